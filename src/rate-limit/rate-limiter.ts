import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.js';
import type { Runtime } from '../runtime.js';
import { MemoryThrottlerStorage } from './memory-throttler.storage.js';
import { RateLimited } from './rate-limit.errors.js';
import { RedisThrottlerStorage } from './redis-throttler.storage.js';

/** Where a principal stands in its window after a request: the X-RateLimit-*-principal headers. */
export interface Quota {
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  reset: number;
}

/**
 * The request limits, in fixed windows over @nestjs/throttler's storage contract (counted in this process
 * or in Redis, so every instance shares the counters). A call is one unit: a batch of N calls takes N. A
 * storage failure (Redis down) lets the request through and is logged: the limits protect capacity, and
 * losing them for a moment is better than refusing every client.
 */
export class RateLimiter {
  constructor(
    private readonly storage: ThrottlerStorage,
    private readonly windowMs: number,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** Takes `units` from `key`'s window of `max`; throws RateLimited when the window cannot give them. */
  async take(limit: 'ip' | 'principal', key: string, units: number, max: number): Promise<Quota | undefined> {
    let quota: Quota | undefined;
    for (let unit = 0; unit < units; unit++) {
      let record;
      try {
        record = await this.storage.increment(`${limit}:${key}`, this.windowMs, max, 0, limit);
      } catch (error) {
        this.logger.warn({ err: error, limit }, 'rate-limit storage failed; allowed');
        return undefined;
      }
      if (record.isBlocked) {
        this.metrics.rateLimited.inc({ limit });
        throw new RateLimited(limit, Math.max(1, record.timeToBlockExpire));
      }
      quota = { limit: max, remaining: Math.max(0, max - record.totalHits), reset: record.timeToExpire };
    }
    return quota;
  }
}

/** The configured limiter: counters in this process, or in the runtime's Redis. */
export function rateLimiterFor({ config, redis, metrics, logger }: Runtime): RateLimiter {
  const { storage, windowMs } = config.rateLimit;
  if (storage === 'redis' && !redis)
    throw new Error('rateLimit.storage is redis but no Redis connection is configured.');
  const counters =
    storage === 'redis' && redis ? new RedisThrottlerStorage(redis) : new MemoryThrottlerStorage();
  return new RateLimiter(counters, windowMs, metrics, logger);
}
