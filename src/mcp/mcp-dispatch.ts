import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import {
  classifyInboundRequest,
  isJsonContentType,
  LATEST_PROTOCOL_VERSION,
  ProtocolError,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCRequest,
} from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import type { ToolContext } from '../tools/tool.js';
import { ExchangeWriter } from './exchange-writer.js';
import type { MethodHandler, Params } from './mcp-methods.js';
import type { McpSurface } from './mcp-server.factory.js';
import {
  cacheHints,
  MODERN_REVISION,
  SERVER_INFO,
  SERVER_INSTRUCTIONS,
  serverCapabilities,
  type CacheHints,
} from './server-info.js';

type Era = 'legacy' | 'modern';

/** A POST to /mcp that Bastion answers itself: a plain request, or a 2025 notification. */
export type PlainExchange =
  { era: 'legacy'; kind: 'notification' } | { era: Era; kind: 'request'; message: JSONRPCRequest };

/** Who is asking, as the HTTP edge established it. */
export interface DispatchCaller {
  principal: ToolContext['principal'];
  sandbox: ToolContext['sandbox'];
  requestId: string;
  logger: Logger;
}

const SERVER_INFO_META = 'io.modelcontextprotocol/serverInfo';
const CLIENT_INFO_META = 'io.modelcontextprotocol/clientInfo';

/**
 * Bastion's own answer to the plain request/response exchanges of both revisions: the workspace methods,
 * 2025 `initialize` and `ping`, 2026-07-28 `server/discover`. The tables are built once, from the same
 * handlers the SDK's protocol server uses, so nothing is constructed per request and no web
 * Request/Response is made. Everything else (batches, GET and listen streams, requests a check would refuse,
 * methods not listed here) goes to the SDK unchanged, so the SDK keeps answering every unusual case.
 */
export class McpDispatch {
  private readonly legacy: Map<string, MethodHandler>;
  private readonly modern: Map<string, MethodHandler>;
  private readonly hints: CacheHints;

  constructor(surface: McpSurface) {
    const methods = Object.entries(surface.methods);
    const dynamic = surface.dynamicTools;
    const initialize: MethodHandler = async (params) => ({
      protocolVersion: negotiate(params.protocolVersion),
      capabilities: serverCapabilities('none', dynamic),
      serverInfo: SERVER_INFO,
      instructions: SERVER_INSTRUCTIONS,
    });
    const empty: MethodHandler = async () => ({});
    this.legacy = new Map([
      ...methods,
      ['initialize', initialize],
      ['ping', empty],
      ['logging/setLevel', empty],
    ]);
    const discover: MethodHandler = async () => ({
      supportedVersions: [MODERN_REVISION],
      capabilities: serverCapabilities('listen', dynamic),
      instructions: SERVER_INSTRUCTIONS,
    });
    this.modern = new Map([...methods, ['server/discover', discover]]);
    this.hints = cacheHints(dynamic);
  }

  /**
   * The exchange when Bastion answers it itself: a POST whose headers and body the SDK would take as they
   * are, for a method listed here. null sends it to the SDK, which answers every other case.
   */
  classify(req: IncomingMessage, body: unknown): PlainExchange | null {
    const { headers } = req;
    if (req.method !== 'POST' || typeof body !== 'object' || body === null || Array.isArray(body))
      return null;
    const accept = headers.accept ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return null;
    if (!isJsonContentType(headers['content-type'] ?? null)) return null;
    const version = header(headers, 'mcp-protocol-version');
    const methodHeader = header(headers, 'mcp-method');
    const nameHeader = header(headers, 'mcp-name');
    const route = classifyInboundRequest({
      httpMethod: 'POST',
      body,
      ...(version !== undefined && { protocolVersionHeader: version }),
      ...(methodHeader !== undefined && { mcpMethodHeader: methodHeader }),
      ...(nameHeader !== undefined && { mcpNameHeader: nameHeader }),
    });
    if (route.kind === 'legacy') {
      if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return null;
      if (route.reason === 'notification') return { era: 'legacy', kind: 'notification' };
      if (route.reason !== 'initialize' && route.reason !== 'no-claim') return null;
      return this.request('legacy', body as JSONRPCRequest);
    }
    if (route.kind !== 'modern' || route.messageKind !== 'request') return null;
    const message = route.message as JSONRPCRequest;
    if (route.classification.revision !== MODERN_REVISION || version !== MODERN_REVISION) return null;
    if (methodHeader !== message.method || !nameHeaderMatches(message, nameHeader)) return null;
    return this.request('modern', message);
  }

  /** Answers a plain request on `res`: JSON, or SSE when progress comes before the answer. */
  async answer(
    exchange: Extract<PlainExchange, { kind: 'request' }>,
    res: ServerResponse,
    caller: DispatchCaller,
  ) {
    const { era, message } = exchange;
    const handler = (era === 'legacy' ? this.legacy : this.modern).get(message.method) as MethodHandler;
    const writer = new ExchangeWriter(res);
    const gone = new AbortController();
    // The client gone before the answer: the call is cancelled (a turn, a search, an upstream call).
    res.once('close', () => {
      if (!writer.answered) gone.abort();
    });
    const params = (message.params ?? {}) as Params;
    try {
      const result = await handler(params, this.context(params, era, caller, gone.signal, writer));
      writer.answer({
        result: era === 'modern' ? this.modernResult(message.method, result) : result,
        jsonrpc: '2.0',
        id: message.id,
      });
    } catch (error) {
      writer.answer({ jsonrpc: '2.0', id: message.id, error: errorOf(error, caller) });
    }
  }

  private request(era: Era, message: JSONRPCRequest): PlainExchange | null {
    const table = era === 'legacy' ? this.legacy : this.modern;
    if (!table.has(message.method) || !wellFormed(message)) return null;
    return { era, kind: 'request', message };
  }

  private context(
    params: Params,
    era: Era,
    caller: DispatchCaller,
    signal: AbortSignal,
    writer: ExchangeWriter,
  ): ToolContext {
    const meta = params._meta as Record<string, unknown> | undefined;
    const client =
      era === 'modern' ? (meta?.[CLIENT_INFO_META] as { name?: unknown } | undefined)?.name : undefined;
    const progressToken = meta?.progressToken as string | number | undefined;
    const ctx: ToolContext = {
      principal: caller.principal,
      sandbox: caller.sandbox,
      signal,
      logger: caller.logger,
      requestId: caller.requestId,
      ...(typeof client === 'string' && { client }),
    };
    if (progressToken !== undefined) {
      ctx.progress = async (update) =>
        writer.related({
          jsonrpc: '2.0',
          method: 'notifications/progress',
          params: { progressToken, ...update },
        });
    }
    return ctx;
  }

  /** A 2026-07-28 result: complete, with its caching hint and the server's identity (as the SDK gives it). */
  private modernResult(method: string, result: Record<string, unknown>): Record<string, unknown> {
    const hint = (this.hints as Record<string, { ttlMs: number; cacheScope: string }>)[method];
    const meta = result._meta as Record<string, unknown> | undefined;
    return {
      ...result,
      resultType: 'complete',
      ...hint,
      _meta: { ...meta, [SERVER_INFO_META]: SERVER_INFO },
    };
  }
}

function negotiate(requested: unknown): string {
  return typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested)
    ? requested
    : LATEST_PROTOCOL_VERSION;
}

/** A JSON-RPC error for what a handler threw: protocol errors as they are, anything else masked. */
function errorOf(error: unknown, caller: DispatchCaller): { code: number; message: string; data?: unknown } {
  if (error instanceof ProtocolError)
    return {
      code: error.code,
      message: error.message,
      ...(error.data !== undefined && { data: error.data }),
    };
  caller.logger.error({ err: error, reqId: caller.requestId }, 'mcp request failed');
  return { code: -32603, message: `Internal error (request ${caller.requestId}).` };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const optional = (value: unknown, check: (v: unknown) => boolean) => value === undefined || check(value);
const isString = (value: unknown) => typeof value === 'string';

/** The params shape each method needs; anything else goes to the SDK, which answers its own error. */
const PARAMS: Record<string, (params: Record<string, unknown>) => boolean> = {
  initialize: (p) => isString(p.protocolVersion) && isObject(p.capabilities) && isObject(p.clientInfo),
  'tools/call': (p) => isString(p.name) && optional(p.arguments, isObject),
  'prompts/get': (p) => isString(p.name) && optional(p.arguments, isObject),
  'resources/read': (p) => isString(p.uri),
  'resources/list': (p) => optional(p.cursor, isString),
  'completion/complete': (p) => isObject(p.ref) && isObject(p.argument),
};

function wellFormed(message: JSONRPCRequest): boolean {
  if (!optional(message.params, isObject)) return false;
  const params = (message.params ?? {}) as Record<string, unknown>;
  if (!optional(params._meta, isObject)) return false;
  const check = PARAMS[message.method];
  return check ? check(params) : true;
}

/** The Mcp-Name header of a 2026-07-28 request names what its body names, plainly (no encoded form). */
function nameHeaderMatches(message: JSONRPCRequest, nameHeader: string | undefined): boolean {
  const params = (message.params ?? {}) as Record<string, unknown>;
  const named =
    message.method === 'tools/call' || message.method === 'prompts/get'
      ? params.name
      : message.method === 'resources/read'
        ? params.uri
        : undefined;
  return named === undefined ? nameHeader === undefined : nameHeader === named;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
