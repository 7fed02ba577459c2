import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { toNodeHandler, type NodeMcpRequestHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, type AuthInfo, type McpHttpHandler } from '@modelcontextprotocol/server';
import { localPrincipal, type Principal } from '../auth/principal.js';
import type { Runtime } from '../runtime.js';
import { createMcpServer } from './mcp-server.factory.js';
import { OriginPolicy } from './origin-policy.js';

/** Marks a request body that was not valid JSON, so /mcp can answer JSON-RPC -32700. */
export const MALFORMED_JSON = Symbol('malformed-json');

/**
 * Streamable HTTP for every revision the SDK serves on one endpoint: 2026-07-28 requests on the modern
 * path, 2025 revisions through the SDK's stateless fallback. Nothing is kept per client between requests,
 * so any instance can answer any request.
 */
export class McpHttpService {
  private readonly handler: McpHttpHandler;
  private readonly node: NodeMcpRequestHandler;
  private readonly origins: OriginPolicy;
  private readonly principal: Principal;

  constructor(private readonly runtime: Runtime) {
    const { surface, sandbox, logger, config } = runtime;
    this.principal = localPrincipal(config.workspace.readOnly);
    this.origins = new OriginPolicy(config.server);
    this.handler = createMcpHandler(
      (ctx) =>
        createMcpServer(surface, {
          principal: principalOf(ctx.authInfo) ?? this.principal,
          sandbox,
          logger,
          requestId: ctx.requestInfo?.headers.get('x-request-id') ?? randomUUID(),
        }),
      {
        legacy: 'stateless',
        maxRequestBodySize: config.server.bodyLimitBytes,
        onerror: (error) => logger.debug({ err: error }, 'mcp request rejected'),
      },
    );
    this.node = toNodeHandler(this.handler);
  }

  async handle(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const verdict = this.origins.check(req.headers);
    if (!verdict.ok) return reject(res, 403, -32600, `Forbidden: ${verdict.reason}.`);
    if (body === MALFORMED_JSON) return reject(res, 400, -32700, 'Parse error: the body is not valid JSON.');
    const auth: AuthInfo = {
      token: '',
      clientId: this.principal.id,
      scopes: [...this.principal.scopes],
      extra: { principal: this.principal },
    };
    await this.node(Object.assign(req, { auth }), res, body);
  }

  close(): Promise<void> {
    return this.handler.close();
  }
}

function principalOf(auth: AuthInfo | undefined): Principal | undefined {
  return auth?.extra?.principal as Principal | undefined;
}

export function jsonRpcError(code: number, message: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } });
}

export function reject(res: ServerResponse, status: number, code: number, message: string): void {
  const body = jsonRpcError(code, message);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
