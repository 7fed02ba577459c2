import { STATUS_CODES } from 'node:http';
import { BadRequestException, Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AuthFailure, ScopeFailure } from '../auth/auth.errors.js';
import { RateLimited } from '../rate-limit/rate-limit.errors.js';
import { WorkspaceUnavailable } from '../workspace/sandbox-pool.js';
import { jsonRpcError } from './mcp-http.service.js';
import { domainAnswer, validationAnswer, type Answer } from './domain-errors.js';

const STATUSES: Record<number, { code: string; message: string }> = {
  400: { code: 'bad_request', message: 'Bad request.' },
  404: { code: 'not_found', message: 'Not found.' },
  405: { code: 'method_not_allowed', message: 'Method not allowed.' },
  413: { code: 'payload_too_large', message: 'Request body too large.' },
  431: { code: 'headers_too_large', message: 'Request headers too large.' },
  415: { code: 'unsupported_media_type', message: 'Unsupported Content-Type: use application/json.' },
};

/** An error body in the form the route speaks: a JSON-RPC error on /mcp, `{ error, message }` elsewhere. */
export function errorBody(url: string, status: number, code: string, message: string): string {
  return url.split('?')[0] === '/mcp'
    ? jsonRpcError(status < 500 ? -32600 : -32603, message)
    : JSON.stringify({ error: code, message });
}

/** The REST API (/v1) answers errors as RFC 9457 problem details, with Bastion's code as an extension. */
function isProblemRoute(url: string): boolean {
  return url.startsWith('/v1/');
}

function problemBody(status: number, code: string, message: string): string {
  return JSON.stringify({
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail: message,
    code,
  });
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
    const problem = isProblemRoute(request.url);
    const body = problem
      ? problemBody(answer.status, answer.code, answer.message)
      : errorBody(request.url, answer.status, answer.code, answer.message);
    void reply
      .code(answer.status)
      .headers({
        'content-type': problem ? 'application/problem+json' : 'application/json',
        ...answer.headers,
      })
      .send(body);
  }

  private answerFor(error: unknown): Answer {
    const domain = domainAnswer(error);
    if (domain) return domain;
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
    if (error instanceof RateLimited) {
      return {
        status: 429,
        code: error.code,
        message: error.message,
        headers: { 'retry-after': String(error.retryAfterSec) },
      };
    }
    if (error instanceof WorkspaceUnavailable)
      return { status: 503, code: error.code, message: error.message };
    const raw = error as { statusCode?: number; status?: number; getStatus?: () => number };
    const status = raw.getStatus?.() ?? raw.statusCode ?? raw.status ?? 500;
    if (status === 400 && error instanceof BadRequestException) return validationAnswer(error);
    if (status >= 500) {
      return {
        status,
        code: 'internal',
        message: status === 503 ? 'Service unavailable.' : 'Internal error.',
      };
    }
    return { status, ...(STATUSES[status] ?? (STATUSES[400] as { code: string; message: string })) };
  }
}
