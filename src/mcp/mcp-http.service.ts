import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import {
  classifyInboundRequest,
  createMcpHandler,
  isJsonContentType,
  SUPPORTED_PROTOCOL_VERSIONS,
  type AuthInfo,
  type JSONRPCRequest,
  type McpHttpHandler,
  type Server,
} from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { Runtime } from '../runtime.js';
import type { Sandbox } from '../workspace/sandbox.js';
import { ExchangeTransport } from './exchange-transport.js';
import { serveThroughFetch } from './fetch-bridge.js';
import { createMcpServer } from './mcp-server.factory.js';
import type { ResourceUpdates } from './server-info.js';
import { OriginPolicy } from './origin-policy.js';

/** Marks a request body that was not valid JSON, so /mcp can answer JSON-RPC -32700. */
export const MALFORMED_JSON = Symbol('malformed-json');

/** Who sent a request, as the guard established it, and the workspace they work in. */
export interface Caller {
  principal: Principal;
  sandbox: Sandbox;
  /** The request's id (x-request-id, accepted or generated). */
  requestId: string;
  /** The request's logger (bound to its id), when the HTTP layer made one. */
  logger?: Logger;
}

/**
 * Streamable HTTP for every revision on one endpoint, stateless: nothing is kept per client between
 * requests, so any instance can answer any request.
 *
 * The SDK's handler serves the 2026-07-28 revision and every unusual 2025 request (batches, GET, DELETE,
 * bad headers). The common 2025 exchange, one request or notification, is answered here on a per-request
 * server over a Node-native transport, skipping the web Request/Response round trip that costs more than
 * the tool call itself. The SDK's own classifier decides which revision a request belongs to.
 */
export class McpHttpService {
  private readonly handler: McpHttpHandler;
  private readonly origins: OriginPolicy;
  /**
   * One publisher per watched URI, so a change is published once however many streams listen to it (the
   * watcher counts one listener added twice as one). Only URIs of files that could be watched are kept.
   */
  private readonly publishers = new Map<string, () => void>();
  private readonly stopAnnouncing: () => void;

  constructor(private readonly runtime: Runtime) {
    const { config, logger } = runtime;
    this.origins = new OriginPolicy(config.server);
    this.handler = createMcpHandler(
      (ctx) => this.serverFor(callerOf(ctx.authInfo), ctx.era === 'modern' ? 'listen' : 'none'),
      {
        legacy: 'stateless',
        maxRequestBodySize: config.server.bodyLimitBytes,
        onerror: (error) => logger.debug({ err: error }, 'mcp request rejected'),
      },
    );
    // 2026-07-28 listen streams that asked for tool-list changes hear when an upstream comes or goes.
    this.stopAnnouncing = runtime.surface.registry.onChange(() => this.handler.notify.toolsChanged());
  }

  async handle(req: IncomingMessage, res: ServerResponse, body: unknown, caller: Caller): Promise<void> {
    const verdict = this.origins.check(req.headers);
    if (!verdict.ok) return reject(res, 403, -32600, `Forbidden: ${verdict.reason}.`);
    if (body === MALFORMED_JSON) return reject(res, 400, -32700, 'Parse error: the body is not valid JSON.');
    switch (legacyExchange(req, body)) {
      case 'notification':
        res.writeHead(202, { 'content-length': 0 }).end();
        return;
      case 'request':
        return this.answer(req, res, body as JSONRPCRequest, caller);
      default:
        await this.watchListenedResources(res, body, caller.sandbox);
        return serveThroughFetch(this.handler, req, res, body, authInfo(caller));
    }
  }

  close(): Promise<void> {
    this.stopAnnouncing();
    return this.handler.close();
  }

  private async answer(
    req: IncomingMessage,
    res: ServerResponse,
    message: JSONRPCRequest,
    caller: Caller,
  ): Promise<void> {
    const server = this.serverFor(caller);
    const transport = new ExchangeTransport(res, message.id);
    try {
      await server.connect(transport);
      transport.onmessage?.(message, { authInfo: authInfo(caller) });
    } catch (error) {
      this.runtime.logger.error({ err: error }, 'mcp exchange failed');
      if (!res.headersSent) reject(res, 500, -32603, 'Internal server error', message.id);
    }
  }

  private serverFor(caller: Caller, updates: ResourceUpdates = 'none'): Server {
    const { surface, logger } = this.runtime;
    const { principal, sandbox, requestId } = caller;
    const requestLogger = caller.logger ?? logger.child({ reqId: requestId });
    return createMcpServer(surface, { principal, sandbox, logger: requestLogger, requestId }, updates);
  }

  /**
   * A 2026-07-28 subscriptions/listen stream that asks for resource updates: the files it names are watched
   * while the stream is open, and each change is published to the SDK's event bus, which delivers it to
   * every stream subscribed to that URI. URIs a read could not reach are not watched.
   */
  private async watchListenedResources(res: ServerResponse, body: unknown, sandbox: Sandbox): Promise<void> {
    const uris = listenedResources(body);
    if (uris.length === 0) return;
    const stops: Array<() => void> = [];
    for (const uri of uris.slice(0, MAX_LISTENED_RESOURCES)) {
      const publish = this.publishers.get(uri) ?? (() => void this.handler.notify.resourceUpdated(uri));
      try {
        stops.push(await this.runtime.surface.watcher.watch(sandbox, uri, publish));
        this.publishers.set(uri, publish);
      } catch {
        // not a file this client could read: nothing to watch
      }
    }
    res.once('close', () => stops.forEach((stop) => stop()));
  }
}

/**
 * Which 2025-era exchange this is, when it is one the service answers itself: a single request or
 * notification that the SDK's transport would accept as it is. Anything else goes to the SDK unchanged,
 * so the SDK keeps answering every error case (406, 415, unsupported versions, malformed messages).
 */
function legacyExchange(req: IncomingMessage, body: unknown): 'request' | 'notification' | null {
  const { headers } = req;
  if (req.method !== 'POST' || typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const accept = headers.accept ?? '';
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return null;
  if (!isJsonContentType(headers['content-type'] ?? null)) return null;
  const protocolVersionHeader = header(headers, 'mcp-protocol-version');
  if (protocolVersionHeader !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(protocolVersionHeader)) {
    return null;
  }
  const route = classifyInboundRequest({
    httpMethod: 'POST',
    body,
    ...(protocolVersionHeader !== undefined && { protocolVersionHeader }),
    ...(headers['mcp-method'] !== undefined && { mcpMethodHeader: header(headers, 'mcp-method') }),
    ...(headers['mcp-name'] !== undefined && { mcpNameHeader: header(headers, 'mcp-name') }),
  });
  if (route.kind !== 'legacy') return null;
  if (route.reason === 'initialize' || route.reason === 'no-claim') return 'request';
  return route.reason === 'notification' ? 'notification' : null;
}

const MAX_LISTENED_RESOURCES = 100;

/** The resource URIs a subscriptions/listen request asks to be told about. */
function listenedResources(body: unknown): string[] {
  const message = body as {
    method?: unknown;
    params?: { notifications?: { resourceSubscriptions?: unknown } };
  };
  if (message?.method !== 'subscriptions/listen') return [];
  const uris = message.params?.notifications?.resourceSubscriptions;
  return Array.isArray(uris) ? uris.filter((uri): uri is string => typeof uri === 'string') : [];
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The caller as the SDK carries it to the server factory. The token is never handed on. */
function authInfo(caller: Caller): AuthInfo {
  const { principal } = caller;
  return { token: '', clientId: principal.id, scopes: [...principal.scopes], extra: { caller } };
}

function callerOf(auth: AuthInfo | undefined): Caller {
  const caller = auth?.extra?.caller as Caller | undefined;
  // Every request reaches the SDK with the caller the guard established.
  if (!caller) throw new Error('An MCP request reached the SDK without a caller.');
  return caller;
}

export function jsonRpcError(code: number, message: string, id: string | number | null = null): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } });
}

export function reject(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  id: string | number | null = null,
): void {
  const body = jsonRpcError(code, message, id);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
