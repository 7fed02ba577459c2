import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { BastionConfig } from '../config/config.schema.js';

export type RedisConfig = BastionConfig['redis'];

/**
 * How every Redis connection behaves while Redis is unreachable: a request that needs Redis fails within
 * about two seconds instead of hanging, and nothing it sent runs later behind its back.
 * - enableOfflineQueue, off once connected: while disconnected a command fails at once. A queued command
 *   would run when Redis returns, after its caller was told it failed (a conversation nobody got). Until
 *   the first connection commands do wait, so requests served while the process starts are not refused;
 *   a failed connection attempt still fails them (maxRetriesPerRequest), and commandTimeout bounds them.
 * - maxRetriesPerRequest 0: a command in flight when the connection drops fails instead of being sent
 *   again; the conversation scripts are not idempotent (an append resent would store the turn twice).
 * - commandTimeout: a server that accepted the connection but stopped answering fails the command.
 * - socketTimeout: and such a connection is dropped and reconnected rather than kept half-open.
 * - retryStrategy: reconnect for ever with a short capped backoff, so Redis returning is noticed within a
 *   second and no restart is needed.
 * - reconnectOnError READONLY: after a failover the old primary is a replica; reconnect to find the new one
 *   (through the sentinels). The failed command is not resent.
 */
const RESILIENCE = {
  enableOfflineQueue: true,
  maxRetriesPerRequest: 0,
  commandTimeout: 1_500,
  socketTimeout: 2_000,
  connectTimeout: 2_000,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
  reconnectOnError: (error: Error) => (error.message.startsWith('READONLY') ? 1 : false),
} satisfies RedisOptions;

/**
 * The process's Redis connection, shared by everything kept in Redis: one server (`redis.url`, redis:// or
 * rediss://) or the primary a set of sentinels names (`redis.sentinels`). A bare string is a URL.
 */
export function connectRedis(target: RedisConfig | string, logger: Logger): Redis {
  const config: RedisConfig =
    typeof target === 'string' ? { url: target, tls: { rejectUnauthorized: true } } : target;
  const auth = config.password === undefined ? {} : { password: config.password };
  let redis: Redis;
  if (config.sentinels) {
    redis = new Redis({
      ...RESILIENCE,
      ...auth,
      sentinels: config.sentinels.map(hostPort),
      name: config.sentinelName as string,
      ...(config.sentinelPassword !== undefined && { sentinelPassword: config.sentinelPassword }),
      sentinelCommandTimeout: RESILIENCE.connectTimeout,
    });
  } else if (config.url) {
    const tls = config.url.startsWith('rediss://') ? { tls: tlsOptions(config.tls) } : {};
    redis = new Redis(config.url, { ...RESILIENCE, ...auth, ...tls });
  } else {
    throw new Error('redis: set redis.url or redis.sentinels.');
  }
  failFastOnceConnected(redis);
  reportOutages(redis, logger);
  return redis;
}

/**
 * A Redis Cluster connection (`redis.cluster`). Only for keys that share a hash tag per script, such as the
 * rate-limit counters; the conversation store's scripts span several slots and refuse a Cluster.
 */
export function connectRedisCluster(config: RedisConfig, logger: Logger): Cluster {
  const { retryStrategy, enableOfflineQueue, ...perNode } = RESILIENCE;
  const cluster = new Cluster((config.cluster ?? []).map(hostPort), {
    enableOfflineQueue,
    maxRedirections: 4,
    clusterRetryStrategy: retryStrategy,
    redisOptions: { ...perNode, ...(config.password !== undefined && { password: config.password }) },
  });
  failFastOnceConnected(cluster);
  reportOutages(cluster, logger);
  return cluster;
}

function failFastOnceConnected(redis: Redis | Cluster): void {
  redis.once('ready', () => {
    redis.options.enableOfflineQueue = false;
  });
}

/** Logs "redis unreachable" once per outage (the client retries every second) and "reachable again". */
function reportOutages(redis: Redis | Cluster, logger: Logger): void {
  let down = false;
  redis.on('error', (error: Error) => {
    if (down) return;
    down = true;
    // The message only: an error may carry the connection options, and with them the password.
    logger.warn({ err: { message: error.message } }, 'redis unreachable');
  });
  redis.on('ready', () => {
    if (down) logger.info('redis reachable again');
    down = false;
  });
}

function tlsOptions(tls: RedisConfig['tls']): ConnectionOptions {
  let ca: Buffer | undefined;
  if (tls.caFile !== undefined) {
    try {
      ca = readFileSync(tls.caFile);
    } catch {
      throw new Error('redis.tls.caFile cannot be read.');
    }
  }
  return {
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(ca && { ca }),
    ...(tls.servername !== undefined && { servername: tls.servername }),
  };
}

function hostPort(entry: string): { host: string; port: number } {
  const colon = entry.lastIndexOf(':');
  return { host: entry.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(entry.slice(colon + 1)) };
}
