import { Inject, Injectable, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply } from 'fastify';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerRequest,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import { RUNTIME, type Runtime } from '../runtime.js';
import { RateLimited, type RateLimit } from './rate-limit.errors.js';

/** The two request limits; each is checked by its own guard, on either side of authentication. */
export const THROTTLERS = { ip: 'ip', principal: 'principal' } as const;

/**
 * @nestjs/throttler's guard, narrowed to one named limit, answering with RateLimited (429 + Retry-After).
 * A storage failure (Redis down) lets the request through and is logged: the limits protect capacity,
 * and losing them for a moment is better than refusing every client.
 */
abstract class OneLimitGuard extends ThrottlerGuard {
  protected abstract readonly limitName: RateLimit;

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    @Inject(Reflector) reflector: Reflector,
    @Inject(RUNTIME) protected readonly runtime: Runtime,
  ) {
    super(options, storage, reflector);
  }

  protected override async handleRequest(request: ThrottlerRequest): Promise<boolean> {
    if (request.throttler.name !== this.limitName) return true;
    try {
      return await super.handleRequest(request);
    } catch (error) {
      if (error instanceof RateLimited) throw error;
      this.runtime.logger.warn({ err: error, limit: this.limitName }, 'rate-limit storage failed; allowed');
      return true;
    }
  }

  /** Headers go on the raw response: /mcp answers it directly, bypassing the framework's reply. */
  protected override setResponseHeader(reply: FastifyReply, name: string, value: number): void {
    if (name.startsWith('Retry-After')) return; // the error filter sends the one Retry-After
    reply.raw.setHeader(name, String(value));
  }

  protected override throwThrottlingException(
    _context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    this.runtime.metrics.rateLimited.inc({ limit: this.limitName });
    throw new RateLimited(this.limitName, Math.max(1, detail.timeToBlockExpire));
  }
}

/** Requests per window from one address, counted before authentication so floods of bad credentials count. */
@Injectable()
export class IpRateLimitGuard extends OneLimitGuard {
  protected readonly limitName = THROTTLERS.ip;
}

/** Requests per window per principal, by its tier; runs after authentication. */
@Injectable()
export class PrincipalRateLimitGuard extends OneLimitGuard {
  protected readonly limitName = THROTTLERS.principal;
}
