import type { IncomingMessage } from 'node:http';
import type { LoggerService } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

/** What a request's log line says about it beyond HTTP: who called, the MCP method and the tool. */
export interface RequestLogFields {
  /** The client's address: the peer, or the X-Forwarded-For client when the proxy is trusted. */
  clientIp?: string;
  principal?: string;
  mcpMethod?: string;
  tool?: string;
}

const fields = new WeakMap<IncomingMessage, RequestLogFields>();

/** Adds fields to the request's completion line. */
export function annotateRequest(req: IncomingMessage, more: RequestLogFields): void {
  fields.set(req, { ...fields.get(req), ...more });
}

/**
 * The one JSON line a request leaves, written when its response closes (answers written straight to the
 * socket, as /mcp's are, included): request id, who called, the MCP method and tool, method, path (never
 * the query), status and time. No headers and no bodies. Health probes are not logged: orchestrators call
 * them every few seconds.
 */
export function logCompletion(
  logger: Logger,
  request: FastifyRequest,
  reply: FastifyReply,
  startedMs: number,
): void {
  if (request.routeOptions.url?.startsWith('/health/')) return;
  const status = reply.raw.statusCode;
  const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
  if (!logger.isLevelEnabled(level)) return;
  logger[level](
    {
      reqId: request.id,
      ...fields.get(request.raw),
      req: {
        method: request.method,
        url: request.url.split('?')[0],
        remoteAddress: request.raw.socket?.remoteAddress,
      },
      res: { statusCode: status },
      responseTime: Math.round(performance.now() - startedMs),
    },
    'request completed',
  );
}

/** The framework's own messages (start-up errors, unhandled exceptions) as the same JSON lines. */
export function frameworkLogger(logger: Logger): LoggerService {
  const line =
    (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') =>
    (message: unknown, ...rest: unknown[]) => {
      const context = rest.at(-1);
      logger[level]({ ...(typeof context === 'string' && { context }) }, String(message));
    };
  return {
    error: line('error'),
    warn: line('warn'),
    log: line('info'),
    debug: line('debug'),
    verbose: line('trace'),
  };
}
