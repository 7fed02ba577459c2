import type { DynamicModule, Provider } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule, type ThrottlerStorage } from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import type { Runtime } from '../runtime.js';
import { MemoryThrottlerStorage } from './memory-throttler.storage.js';
import { IpRateLimitGuard, PrincipalRateLimitGuard, THROTTLERS } from './rate-limit.guards.js';
import { tierOf } from './rate-limit.tiers.js';
import { RedisThrottlerStorage } from './redis-throttler.storage.js';

/**
 * The request limits: per IP before authentication, per principal (by tier) after it, in fixed windows,
 * counted in this process or in Redis so every instance shares the counters. Keys name the limit and who
 * is counted, not the route: a client's requests count together wherever they go.
 */
export function rateLimitModule(runtime: Runtime): DynamicModule {
  const { config } = runtime;
  const { windowMs, perIp } = config.rateLimit;
  return ThrottlerModule.forRoot({
    throttlers: [
      { name: THROTTLERS.ip, ttl: windowMs, limit: perIp },
      {
        name: THROTTLERS.principal,
        ttl: windowMs,
        // Resolved for every request, also before authentication, when the IP guard runs: then unused.
        limit: (context) => {
          const { principal } = context.switchToHttp().getRequest<FastifyRequest>();
          return principal ? tierOf(config, principal).requests : perIp;
        },
        getTracker: (request) => (request as FastifyRequest).principal?.id ?? '',
        // Public routes have no principal: only the IP limit applies to them.
        skipIf: (context) => !context.switchToHttp().getRequest<FastifyRequest>().principal,
      },
    ],
    storage: storageFor(runtime),
    generateKey: (_context, tracker, name) => `${name}:${tracker}`,
  });
}

/** The guards, to be registered between which the authentication guard sits. */
export const RATE_LIMIT_GUARDS = {
  beforeAuth: { provide: APP_GUARD, useClass: IpRateLimitGuard } satisfies Provider,
  afterAuth: { provide: APP_GUARD, useClass: PrincipalRateLimitGuard } satisfies Provider,
};

function storageFor({ config, redis }: Runtime): ThrottlerStorage {
  if (config.rateLimit.storage === 'memory') return new MemoryThrottlerStorage();
  if (!redis) throw new Error('rateLimit.storage is redis but no Redis connection is configured.');
  return new RedisThrottlerStorage(redis);
}
