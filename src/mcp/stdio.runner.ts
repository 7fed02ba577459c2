import { realpath } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Server } from '@modelcontextprotocol/server';
import { serveStdio, type StdioServerHandle } from '@modelcontextprotocol/server/stdio';
import { localPrincipal } from '../auth/principal.js';
import type { Runtime } from '../runtime.js';
import type { Sandbox } from '../workspace/sandbox.js';
import { upstreamScopes } from '../config/upstreams.schema.js';
import { createMcpServer, type McpSurface, type ServingContext } from './mcp-server.factory.js';

/**
 * MCP over stdio for local clients (Claude Desktop, Cursor). stdout carries protocol bytes only; logs go to
 * stderr. The connection runs as the local principal; roots the client declares may narrow the workspace.
 */
export function runStdio(runtime: Runtime): StdioServerHandle {
  const { surface, sandbox, logger, config } = runtime;
  return serveStdio(
    () => {
      const serving: ServingContext = {
        principal: localPrincipal(config.workspace.readOnly, false, upstreamScopes(config.upstreams)),
        sandbox,
        logger,
      };
      const server = createMcpServer(surface, serving, 'subscribe');
      const applyRoots = async (): Promise<void> => {
        if (!server.getClientCapabilities()?.roots) return;
        try {
          const { roots } = await server.listRoots();
          serving.sandbox = await narrowToRoots(
            sandbox,
            roots.map((r) => r.uri),
          );
          logger.info({ roots: serving.sandbox.allowedDirectories() }, 'client roots applied');
        } catch (error) {
          logger.warn({ err: error }, 'could not read client roots; serving the whole workspace');
        }
      };
      server.oninitialized = () => void applyRoots();
      announceToolChanges(server, surface);
      server.setNotificationHandler('notifications/roots/list_changed', () => applyRoots());
      return server as Server;
    },
    { onerror: (error) => logger.debug({ err: error }, 'stdio error') },
  );
}

/** Tells the client on this connection each time the tool list changes (an upstream came or went). */
function announceToolChanges(server: Server, surface: McpSurface): void {
  if (!surface.dynamicTools) return;
  const stop = surface.registry.onChange(() => void server.sendToolListChanged().catch(() => undefined));
  const previous = server.onclose;
  server.onclose = () => {
    stop();
    previous?.();
  };
}

/**
 * The workspace narrowed to the client's roots that lie inside it. Roots outside are ignored: a client can
 * narrow what it reaches, never widen it. When no root lies inside, the workspace is served unchanged.
 */
export async function narrowToRoots(sandbox: Sandbox, uris: readonly string[]): Promise<Sandbox> {
  const inside: string[] = [];
  for (const uri of uris) {
    if (!uri.startsWith('file://')) continue;
    try {
      const rel = sandbox.policy.containedRelative(await realpath(fileURLToPath(uri)));
      if (rel !== null && !sandbox.policy.isHidden(rel)) inside.push(rel);
    } catch {
      // a root that does not exist cannot be served
    }
  }
  if (inside.length === 0 || inside.includes('')) return sandbox;
  return sandbox.narrow(inside);
}
