import {
  ProtocolError,
  ProtocolErrorCode,
  ResourceNotFoundError,
  type Server,
} from '@modelcontextprotocol/server';
import type { FileWatcher } from '../workspace/file-watcher.js';
import { SandboxRefusal } from '../workspace/sandbox.errors.js';
import type { ServingContext } from './mcp-server.factory.js';

/**
 * resources/subscribe and resources/unsubscribe for a connection that lives on (stdio, 2025 revisions):
 * each subscribed file is watched, and a change sends notifications/resources/updated on this connection.
 * Watches end with the connection.
 */
export function serveResourceSubscriptions(
  server: Server,
  serving: ServingContext,
  watcher: FileWatcher,
): void {
  const active = new Map<string, () => void>();

  server.setRequestHandler('resources/subscribe', async (request) => {
    const { uri } = request.params;
    if (active.has(uri)) return {};
    const updated = () => void server.sendResourceUpdated({ uri }).catch(() => {});
    try {
      active.set(uri, await watcher.watch(serving.sandbox, uri, updated));
    } catch (error) {
      if (!(error instanceof SandboxRefusal)) throw error;
      if (error.code === 'not_found') throw new ResourceNotFoundError(uri, `Resource not found: ${uri}`);
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, error.message);
    }
    return {};
  });

  server.setRequestHandler('resources/unsubscribe', (request) => {
    active.get(request.params.uri)?.();
    active.delete(request.params.uri);
    return {};
  });

  const previous = server.onclose;
  server.onclose = () => {
    for (const stop of active.values()) stop();
    active.clear();
    previous?.();
  };
}
