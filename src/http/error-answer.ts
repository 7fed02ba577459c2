import { STATUS_CODES } from 'node:http';
import { BadRequestException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuthFailure, ScopeFailure } from '../auth/auth.errors.js';
import { RateLimited } from '../rate-limit/rate-limit.errors.js';
import { WorkspaceUnavailable } from '../workspace/sandbox-pool.js';
import { domainAnswer, validationAnswer, type Answer } from './domain-errors.js';

export type { Answer } from './domain-errors.js';

const STATUSES: Record<number, { code: string; message: string }> = {
  400: { code: 'bad_request', message: 'Bad request.' },
  404: { code: 'not_found', message: 'Not found.' },
  405: { code: 'method_not_allowed', message: 'Method not allowed.' },
  413: { code: 'payload_too_large', message: 'Request body too large.' },
  431: { code: 'headers_too_large', message: 'Request headers too large.' },
  415: { code: 'unsupported_media_type', message: 'Unsupported Content-Type: use application/json.' },
};

/** The error shapes routes speak: JSON-RPC on /mcp, problem details on /v1, `{ error, message }` elsewhere. */
type Shape = 'json-rpc' | 'problem' | 'plain';

/** The shape of the route the router matched (any spelling of its path), or plain for an unmatched one. */
export function shapeOf(request: FastifyRequest): Shape {
  const route = request.routeOptions.url;
  if (route === '/mcp') return 'json-rpc';
  return route?.startsWith('/v1/') ? 'problem' : 'plain';
}

export function jsonRpcError(code: number, message: string, id: string | number | null = null): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } });
}

/** The body and content type of an error answer in a route's shape. */
export function errorBody(
  shape: Shape,
  answer: Pick<Answer, 'status' | 'code' | 'message'>,
): { type: string; body: string } {
  const { status, code, message } = answer;
  if (shape === 'json-rpc')
    return { type: 'application/json', body: jsonRpcError(status < 500 ? -32600 : -32603, message) };
  if (shape === 'problem') {
    const title = STATUS_CODES[status] ?? 'Error';
    const body = JSON.stringify({ type: 'about:blank', title, status, detail: message, code });
    return { type: 'application/problem+json', body };
  }
  return { type: 'application/json', body: JSON.stringify({ error: code, message }) };
}

/** Sends an error answer in the shape of the route the request matched. */
export function sendAnswer(request: FastifyRequest, reply: FastifyReply, answer: Answer): FastifyReply {
  const { type, body } = errorBody(shapeOf(request), answer);
  return reply
    .code(answer.status)
    .headers({ 'content-type': type, ...answer.headers })
    .send(body);
}

/**
 * The HTTP answer to an error, with the status the transport calls for. Messages are Bastion's own; anything
 * unexpected is a masked 500 (the caller logs its details).
 */
export function answerFor(error: unknown): Answer {
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
  if (error instanceof WorkspaceUnavailable) return { status: 503, code: error.code, message: error.message };
  const raw = error as { statusCode?: number; status?: number; getStatus?: () => number };
  const status = raw.getStatus?.() ?? raw.statusCode ?? raw.status ?? 500;
  if (status === 400 && error instanceof BadRequestException) return validationAnswer(error);
  if (status >= 500) {
    return { status, code: 'internal', message: status === 503 ? 'Service unavailable.' : 'Internal error.' };
  }
  return { status, ...(STATUSES[status] ?? (STATUSES[400] as { code: string; message: string })) };
}
