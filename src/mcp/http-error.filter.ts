import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AuthFailure, ScopeFailure } from '../auth/auth.errors.js';
import { WorkspaceUnavailable } from '../workspace/sandbox-pool.js';
import { jsonRpcError } from './mcp-http.service.js';

const MESSAGES: Record<number, string> = {
  400: 'Bad request.',
  404: 'Not found.',
  405: 'Method not allowed.',
  413: 'Request body too large.',
  415: 'Unsupported Content-Type: use application/json.',
  503: 'Service unavailable.',
};

interface Answer {
  status: number;
  message: string;
  code: string;
  headers?: Record<string, string>;
}

/**
 * Errors raised before or instead of a route's answer, with the HTTP status the transport calls for: on
 * /mcp the body is a JSON-RPC error, elsewhere `{ error, message }`. Messages are Bastion's own; anything
 * unexpected is a masked 500 logged with its details.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const request = http.getRequest<FastifyRequest>();
    const answer = this.answerFor(error);
    if (answer.status >= 500 && answer.code === 'internal')
      this.logger.error({ err: error }, 'request failed');
    const body =
      request.url.split('?')[0] === '/mcp'
        ? jsonRpcError(answer.status < 500 ? -32600 : -32603, answer.message)
        : JSON.stringify({ error: answer.code, message: answer.message });
    void reply
      .code(answer.status)
      .headers({ 'content-type': 'application/json', ...answer.headers })
      .send(body);
  }

  private answerFor(error: unknown): Answer {
    if (error instanceof AuthFailure) {
      return {
        status: 401,
        code: 'unauthorized',
        message: error.message,
        headers: { 'www-authenticate': error.challenge },
      };
    }
    if (error instanceof ScopeFailure) {
      return {
        status: 403,
        code: error.code,
        message: error.message,
        headers: { 'www-authenticate': error.challenge },
      };
    }
    if (error instanceof WorkspaceUnavailable)
      return { status: 503, code: error.code, message: error.message };
    const raw = error as { statusCode?: number; status?: number; getStatus?: () => number };
    const status = raw.getStatus?.() ?? raw.statusCode ?? raw.status ?? 500;
    const message = MESSAGES[status] ?? (status < 500 ? 'Bad request.' : 'Internal error.');
    return { status, message, code: status < 500 ? codeFor(status) : 'internal' };
  }
}

function codeFor(status: number): string {
  return (
    {
      400: 'bad_request',
      404: 'not_found',
      405: 'method_not_allowed',
      413: 'payload_too_large',
      415: 'unsupported_media_type',
    }[status] ?? 'bad_request'
  );
}
