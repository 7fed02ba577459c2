import type { DoorRequest } from '../tools/door.js';
import type { OperationName } from '../tools/operation.js';

const OPERATIONS: ReadonlySet<string> = new Set<OperationName>([
  'resources/list',
  'resources/read',
  'resources/subscribe',
  'completion/complete',
]);

/**
 * The door calls a JSON-RPC body asks for (one message or a batch): what the edge counts and, when a limit
 * refuses the body, records as refused. Messages that reach no workspace (initialize, lists of tools or
 * prompts, ping) ask for none.
 */
export function doorRequestsOf(body: unknown): DoorRequest[] {
  const messages = Array.isArray(body) ? body : [body];
  return messages.flatMap((message) => requestsOf(message));
}

function requestsOf(message: unknown): DoorRequest[] {
  if (typeof message !== 'object' || message === null) return [];
  const { method, params } = message as { method?: unknown; params?: Record<string, unknown> };
  const p = params ?? {};
  if (method === 'tools/call' && typeof p.name === 'string')
    return [{ kind: 'tool', name: p.name, args: p.arguments }];
  if (method === 'prompts/get' && typeof p.name === 'string')
    return [{ kind: 'prompt', name: p.name, args: p.arguments ?? {} }];
  if (method === 'subscriptions/listen') {
    const uris = (p.notifications as { resourceSubscriptions?: unknown } | undefined)?.resourceSubscriptions;
    if (!Array.isArray(uris)) return [];
    return uris.map((uri) => ({ kind: 'operation', name: 'resources/subscribe', args: { uri } }));
  }
  if (typeof method === 'string' && OPERATIONS.has(method)) {
    const { _meta: _ignored, ...args } = p;
    return [{ kind: 'operation', name: method, args }];
  }
  return [];
}
