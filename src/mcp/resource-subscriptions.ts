import type { Server, ServerContext } from '@modelcontextprotocol/server';

/** Subscribes through the door: the watch it returns tells `updated` of each change until stopped. */
export type Subscribe = (
  uri: string,
  ctx: ServerContext,
  updated: (uri: string) => void,
) => Promise<{ stop(): void }>;

/**
 * resources/subscribe and resources/unsubscribe for a connection that lives on (stdio, 2025 revisions):
 * each subscription passes the door (scope, sandbox, audit), and a change sends
 * notifications/resources/updated on this connection. Watches end with the connection.
 */
export function serveResourceSubscriptions(server: Server, subscribe: Subscribe): void {
  const active = new Map<string, () => void>();
  const updated = (uri: string) => void server.sendResourceUpdated({ uri }).catch(() => {});

  server.setRequestHandler('resources/subscribe', async (request, ctx) => {
    const { uri } = request.params;
    if (active.has(uri)) return {};
    const { stop } = await subscribe(uri, ctx, updated);
    if (active.has(uri))
      stop(); // subscribed twice at once: one watch is enough
    else active.set(uri, stop);
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
