import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DynamicModule } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
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

/** Adds fields to the request's completion line (and its later log lines). */
export function annotateRequest(req: IncomingMessage, more: RequestLogFields): void {
  fields.set(req, { ...fields.get(req), ...more });
}

/**
 * One JSON line per request (nestjs-pino over pino-http) with the request id, principal, MCP method and
 * tool; no headers, no query strings, no bodies. Health probes are not logged: orchestrators call them
 * every few seconds.
 */
export function requestLogModule(logger: Logger): DynamicModule {
  return LoggerModule.forRoot({
    pinoHttp: {
      logger,
      genReqId: (req) => String(req.headers['x-request-id']),
      customAttributeKeys: { reqId: 'reqId' },
      quietReqLogger: true,
      // The middleware runner rewrites req.url relative to its mount point; originalUrl is the request's.
      autoLogging: { ignore: (req) => requestPath(req).startsWith('/health/') },
      customLogLevel: (_req, res, error) =>
        error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
      customProps: (req) => ({ ...fields.get(req) }),
      serializers: {
        req: (req: { method: string; url: string; remoteAddress?: string }) => ({
          method: req.method,
          url: req.url.split('?')[0],
          remoteAddress: req.remoteAddress,
        }),
        res: (res: ServerResponse | { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    },
  });
}

function requestPath(req: IncomingMessage & { originalUrl?: string }): string {
  return req.originalUrl ?? req.url ?? '';
}
