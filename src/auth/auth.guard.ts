import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { PUBLIC_ROUTE, REQUIRED_SCOPE } from './auth.decorators.js';
import { Authenticator } from './authenticator.js';
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
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = await this.auth.authenticate(request.headers.authorization);
    const scope = this.reflector.getAllAndOverride<Scope | undefined>(REQUIRED_SCOPE, targets);
    if (scope) this.auth.requireScope(principal, scope);
    request.principal = principal;
    return true;
  }
}

/** The principal AuthGuard established; a route reached without one is a wiring bug. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('No principal on a guarded route.');
  return request.principal;
}
