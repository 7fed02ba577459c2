import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { jsonRpcError } from './mcp-http.service.js';

const MESSAGES: Record<number, string> = {
  400: 'Bad request.',
  404: 'Not found.',
  405: 'Method not allowed.',
  413: 'Request body too large.',
  415: 'Unsupported Content-Type: use application/json.',
};

/**
 * Errors raised before a route runs (body too large, unsupported media type) answered as JSON-RPC error
 * bodies with the HTTP status the transport calls for; anything else is a masked 500.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const raw = error as { statusCode?: number; status?: number; getStatus?: () => number };
    const status = raw.getStatus?.() ?? raw.statusCode ?? raw.status ?? 500;
    if (status >= 500) this.logger.error({ err: error }, 'request failed');
    const message = MESSAGES[status] ?? (status < 500 ? 'Bad request.' : 'Internal error.');
    void reply
      .code(status)
      .header('content-type', 'application/json')
      .send(jsonRpcError(status < 500 ? -32600 : -32603, message));
  }
}
