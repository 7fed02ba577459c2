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
import type { ToolContext } from '../tools/tool.js';
import { OperationRefused } from '../tools/tool.errors.js';
import { doorRequestsOf } from './door-requests.js';
import { ExchangeTransport } from './exchange-transport.js';
import { McpDispatch } from './mcp-dispatch.js';
import { ListenBus, ListenStream } from './listen-bus.js';
import { serveThroughFetch } from './fetch-bridge.js';
import { createMcpServer } from './mcp-server.factory.js';
import type { ResourceUpdates } from './server-info.js';
import { jsonRpcError } from '../http/error-answer.js';
import { MALFORMED_JSON } from '../http/http-gate.js';

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
 * The plain exchanges of both revisions (one request, for a method of the workspace; a 2025 notification)
 * are answered by Bastion's own dispatch, built once, over the Node response: no server is built per
 * request and no web Request/Response is made. The SDK answers everything else as it is: batches, GET and
 * listen streams, other methods, and every request its checks would refuse. The SDK's own classifier
 * decides which revision a request belongs to.
 */
export class McpHttpService {
  private readonly handler: McpHttpHandler;
  private readonly dispatch: McpDispatch;
  private readonly bus = new ListenBus();
  private readonly stopAnnouncing: () => void;

  constructor(private readonly runtime: Runtime) {
    const { config, logger } = runtime;
    this.handler = createMcpHandler(
      (ctx) => this.serverFor(callerOf(ctx.authInfo), ctx.era === 'modern' ? 'listen' : 'none'),
      {
        legacy: 'stateless',
        bus: this.bus,
        maxRequestBodySize: config.server.bodyLimitBytes,
        onerror: (error) => logger.debug({ err: error }, 'mcp request rejected'),
      },
    );
    this.dispatch = new McpDispatch(runtime.surface);
    // 2026-07-28 listen streams that asked for tool-list changes hear when an upstream comes or goes.
    this.stopAnnouncing = runtime.surface.registry.onChange(() => this.handler.notify.toolsChanged());
  }

  async handle(req: IncomingMessage, res: ServerResponse, body: unknown, caller: Caller): Promise<void> {
    if (body === MALFORMED_JSON) return reject(res, 400, -32700, 'Parse error: the body is not valid JSON.');
    if (repeatsAnId(body)) return reject(res, 400, -32600, 'Invalid Request: a batch repeats a request id.');
    const plain = this.dispatch.classify(req, body);
    if (plain?.kind === 'notification') return void res.writeHead(202, { 'content-length': 0 }).end();
    if (plain) return this.dispatch.answer(plain, res, { ...caller, logger: this.loggerOf(caller) });
    switch (legacyExchange(req, body)) {
      case 'notification':
        res.writeHead(202, { 'content-length': 0 }).end();
        return;
      case 'request':
        return this.answer(req, res, body as JSONRPCRequest, caller);
      default:
        if (isListen(body)) return this.listen(req, res, body, caller);
        return serveThroughFetch(this.handler, req, res, body, authInfo(caller));
    }
  }

  /** Records the door calls a refused /mcp body asked for, each once, as refused with `code`. */
  async recordRefused(body: unknown, principal: Principal, requestId: string, code: string): Promise<void> {
    const requests = doorRequestsOf(body);
    if (requests.length === 0) return;
    const { runtime } = this;
    const sandbox = await runtime.sandboxes.for(principal).catch(() => runtime.sandbox);
    const ctx = { principal, sandbox, signal: AbortSignal.abort(), logger: runtime.logger, requestId };
    runtime.surface.registry.refuseAll(requests, ctx, code);
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
    const { principal, sandbox, requestId } = caller;
    const serving = { principal, sandbox, logger: this.loggerOf(caller), requestId };
    return createMcpServer(this.runtime.surface, serving, updates);
  }

  /** The request's logger: every line it writes carries the request id. */
  private loggerOf(caller: Caller): Logger {
    return caller.logger ?? this.runtime.logger.child({ reqId: caller.requestId });
  }

  /**
   * A 2026-07-28 subscriptions/listen stream. Each resource it asks to be told about is a subscription
   * through the door (scope, sandbox, audit); those refused are left out of the request, so the
   * acknowledgement names only what will be delivered. Updates go to this stream alone, while it is open.
   */
  private async listen(
    req: IncomingMessage,
    res: ServerResponse,
    body: ListenRequest,
    caller: Caller,
  ): Promise<void> {
    const stream = new ListenStream();
    const watches: Array<{ stop(): void }> = [];
    const closed = new AbortController();
    res.once('close', () => {
      closed.abort();
      watches.forEach((watch) => watch.stop());
    });
    const asked = body.params.notifications.resourceSubscriptions;
    if (Array.isArray(asked)) {
      const accepted: string[] = [];
      const ctx: ToolContext = {
        principal: caller.principal,
        sandbox: caller.sandbox,
        signal: closed.signal,
        logger: caller.logger ?? this.runtime.logger,
        requestId: caller.requestId,
        resourceUpdated: (uri) => this.bus.deliver(stream, { kind: 'resource_updated', uri }),
      };
      for (const uri of asked.slice(0, MAX_LISTENED_RESOURCES)) {
        if (typeof uri !== 'string') continue;
        try {
          watches.push(await this.runtime.surface.registry.perform('resources/subscribe', { uri }, ctx));
          accepted.push(uri);
        } catch (error) {
          if (!(error instanceof OperationRefused)) throw error;
        }
      }
      body = withResources(body, accepted);
    }
    if (res.destroyed) return;
    await this.bus.opened(stream, () => serveThroughFetch(this.handler, req, res, body, authInfo(caller)));
  }
}

interface ListenRequest {
  method: 'subscriptions/listen';
  params: { notifications: { resourceSubscriptions?: unknown } & Record<string, unknown> } & Record<
    string,
    unknown
  >;
}

function isListen(body: unknown): body is ListenRequest {
  const message = body as { method?: unknown; params?: { notifications?: unknown } } | null;
  return (
    message?.method === 'subscriptions/listen' &&
    typeof message.params?.notifications === 'object' &&
    message.params.notifications !== null
  );
}

/** The listen request with only the resources whose subscription the door accepted. */
function withResources(body: ListenRequest, uris: string[]): ListenRequest {
  const { resourceSubscriptions: _asked, ...notifications } = body.params.notifications;
  return {
    ...body,
    params: {
      ...body.params,
      notifications: uris.length > 0 ? { ...notifications, resourceSubscriptions: uris } : notifications,
    },
  };
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

/** A batch whose requests share an id: their answers could not be told apart, so none is run. */
function repeatsAnId(body: unknown): boolean {
  if (!Array.isArray(body)) return false;
  const ids = body
    .filter(
      (m): m is { id: unknown; method: unknown } =>
        typeof m === 'object' && m !== null && 'id' in m && 'method' in m,
    )
    .map((m) => JSON.stringify(m.id));
  return new Set(ids).size !== ids.length;
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
