import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/server';
import type { FastifyRequest } from 'fastify';
import { known } from '../observability/metrics.js';
import type { ToolRegistry } from '../tools/tool-registry.js';

/** What a /mcp request is, in values from closed sets: safe as metric labels and log fields. */
export interface McpRequestLabels {
  /** The JSON-RPC method, `batch`, `stream` (GET), `delete`, or `other`. */
  method: string;
  /** The protocol revision the client named, or `none`/`other`. */
  revision: string;
  /** The tool a tools/call names, when it is a registered tool. */
  tool?: string;
}

const METHODS = new Set([
  'initialize',
  'ping',
  'server/discover',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'subscriptions/listen',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
]);

const REVISIONS = new Set<string>(SUPPORTED_PROTOCOL_VERSIONS);

export function describeMcpRequest(request: FastifyRequest, registry: ToolRegistry): McpRequestLabels {
  const header = request.headers['mcp-protocol-version'];
  const claimed = typeof header === 'string' ? header : initializeVersion(request.body);
  const revision = claimed === undefined ? 'none' : known(claimed, REVISIONS);
  if (request.method === 'GET') return { method: 'stream', revision };
  if (request.method === 'DELETE') return { method: 'delete', revision };
  const body = request.body;
  if (Array.isArray(body)) return { method: 'batch', revision };
  const message = body as { method?: unknown; params?: { name?: unknown } } | undefined;
  const method = known(message?.method, METHODS);
  const name = message?.params?.name;
  const tool = method === 'tools/call' && typeof name === 'string' && registry.has(name) ? name : undefined;
  return { method, revision, ...(tool !== undefined && { tool }) };
}

function initializeVersion(body: unknown): string | undefined {
  const message = body as { method?: unknown; params?: { protocolVersion?: unknown } } | undefined;
  if (message?.method !== 'initialize') return undefined;
  const version = message.params?.protocolVersion;
  return typeof version === 'string' ? version : undefined;
}
