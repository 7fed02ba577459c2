import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * The process's Redis connection, shared by everything kept in Redis. Commands fail fast while Redis is
 * unreachable (no unbounded offline queue); the client reconnects on its own with capped backoff.
 */
export function connectRedis(url: string, logger: Logger): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000),
  });
  let reported = false;
  redis.on('error', (error: Error) => {
    // Logged once per outage: the client retries every few seconds. The URL may hold a password: not logged.
    if (!reported) logger.warn({ err: { message: error.message } }, 'redis unreachable');
    reported = true;
  });
  redis.on('ready', () => {
    if (reported) logger.info('redis reachable again');
    reported = false;
  });
  return redis;
}
