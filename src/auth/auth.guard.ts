import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { PUBLIC_ROUTE, REQUIRED_SCOPE } from './auth.decorators.js';
import { Authenticator } from './authenticator.js';
import { annotateRequest } from '../observability/request-log.js';
import { RUNTIME, type Runtime } from '../runtime.js';
import { AuthFailure, ScopeFailure } from './auth.errors.js';
import type { Principal, Scope } from './principal.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by AuthGuard on every route that is not public. */
    principal?: Principal;
  }
}

/** The global guard: every route needs a principal unless marked @Public(); @RequireScope adds a scope. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    @Inject(Authenticator) private readonly auth: Authenticator,
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    // Behind a trusted proxy this is the client's address from X-Forwarded-For; remoteAddress is the proxy.
    annotateRequest(request.raw, { clientIp: request.ip });
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    try {
      const principal = await this.auth.authenticate(request.headers.authorization);
      annotateRequest(request.raw, { principal: principal.id });
      const scope = this.reflector.getAllAndOverride<Scope | undefined>(REQUIRED_SCOPE, targets);
      if (scope) this.auth.requireScope(principal, scope);
      request.principal = principal;
      return true;
    } catch (error) {
      this.recordRefusal(error, request);
      throw error;
    }
  }

  /** Every refused credential or scope is an audit record (who, if known, and why; never the credential). */
  private recordRefusal(error: unknown, request: FastifyRequest): void {
    if (!(error instanceof AuthFailure) && !(error instanceof ScopeFailure)) return;
    this.runtime.audit.record({
      kind: 'auth_failure',
      actor: error instanceof ScopeFailure ? (error.principal ?? 'anonymous') : 'anonymous',
      action: error instanceof ScopeFailure ? 'authorize' : 'authenticate',
      target: request.routeOptions.url ?? '(unmatched)',
      outcome: 'denied',
      code: error.code,
      requestId: request.id,
    });
  }
}

/** The principal AuthGuard established; a route reached without one is a wiring bug. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('No principal on a guarded route.');
  return request.principal;
}
