import type { FastifyRequest } from 'fastify';
import type { Principal } from './principal.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the HTTP gate on every route that needs a principal, before the body is read. */
    principal?: Principal;
  }
}

/** The principal the gate established; a guarded route reached without one is a wiring bug. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('No principal on a guarded route.');
  return request.principal;
}
