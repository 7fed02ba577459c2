import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Cluster, Redis } from 'ioredis';

/** The record `ThrottlerStorage.increment` resolves to (the package does not export its name). */
export type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

export interface RedisThrottlerStorageOptions {
  /** Prepended to every key; defaults to `bastion:throttle:`. */
  prefix?: string;
}

const DEFAULT_PREFIX = 'bastion:throttle:';
const COMMAND = 'bastionThrottleIncrement';

/**
 * One atomic step of @nestjs/throttler 6's in-memory `ThrottlerStorageService.increment`, for one
 * (throttler name, key): the same sliding window of hit expiries, fixed reporting window, block and reset,
 * with times in ms and reported durations in whole seconds rounded up. Server time, so every instance
 * sharing this Redis agrees on "now".
 *
 * KEYS[1]: hash { exp = window end, bexp = block end (0 if never blocked), blk = 0|1, seq = hit counter }
 * KEYS[2]: sorted set of hits, scored by the time each one expires
 * ARGV: ttl ms, limit, blockDuration ms
 * Returns { totalHits, timeToExpire, isBlocked (0|1), timeToBlockExpire }.
 */
const INCREMENT_LUA = `
local stateKey, hitsKey = KEYS[1], KEYS[2]
local ttl, limit, blockDuration = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function secondsUntil(at)
  return math.ceil((at - now) / 1000)
end

local state = redis.call('HMGET', stateKey, 'exp', 'bexp', 'blk')
local expiresAt, blockExpiresAt, blocked = tonumber(state[1]), tonumber(state[2]) or 0, state[3] == '1'
if expiresAt == nil then
  expiresAt = now + ttl
  redis.call('DEL', hitsKey)
end

redis.call('ZREMRANGEBYSCORE', hitsKey, '-inf', now)
local totalHits = redis.call('ZCARD', hitsKey)

local function fireHit()
  local seq = redis.call('HINCRBY', stateKey, 'seq', 1)
  redis.call('ZADD', hitsKey, now + ttl, now .. ':' .. seq)
  totalHits = totalHits + 1
end

local function score(range)
  return range[2] and tonumber(range[2]) or nil
end

local function save()
  redis.call('HSET', stateKey, 'exp', expiresAt, 'bexp', blockExpiresAt, 'blk', blocked and 1 or 0)
  local keepUntil = expiresAt
  if blocked and blockExpiresAt > keepUntil then keepUntil = blockExpiresAt end
  local lastHit = score(redis.call('ZRANGE', hitsKey, -1, -1, 'WITHSCORES'))
  if lastHit and lastHit > keepUntil then keepUntil = lastHit end
  local ms = math.max(1, math.ceil(keepUntil - now))
  redis.call('PEXPIRE', stateKey, ms)
  redis.call('PEXPIRE', hitsKey, ms)
end

local timeToExpire = secondsUntil(expiresAt)
if timeToExpire <= 0 then
  expiresAt = now + ttl
  timeToExpire = secondsUntil(expiresAt)
end

if blockDuration <= 0 then
  local full = totalHits >= limit
  if not full then fireHit() end
  local timeToBlockExpire = 0
  if full then
    local firstHit = score(redis.call('ZRANGE', hitsKey, 0, 0, 'WITHSCORES'))
    timeToBlockExpire = firstHit and secondsUntil(firstHit) or timeToExpire
  end
  save()
  return { totalHits + (full and 1 or 0), timeToExpire, full and 1 or 0, timeToBlockExpire }
end

if not blocked then fireHit() end
if totalHits > limit and not blocked then
  blocked = true
  blockExpiresAt = now + blockDuration
end
local timeToBlockExpire = secondsUntil(blockExpiresAt)
if timeToBlockExpire <= 0 and blocked then
  blocked = false
  redis.call('DEL', hitsKey)
  totalHits = 0
  fireHit()
end
save()
return { totalHits, timeToExpire, blocked and 1 or 0, timeToBlockExpire }
`;

type IncrementReply = [totalHits: number, timeToExpire: number, isBlocked: number, timeToBlockExpire: number];

interface ThrottleCommands {
  [COMMAND](
    stateKey: string,
    hitsKey: string,
    ttl: number,
    limit: number,
    blockDuration: number,
  ): Promise<IncrementReply>;
}

/**
 * `ThrottlerStorage` on Redis, a drop-in for the in-memory `ThrottlerStorageService`: instances sharing one
 * Redis share one counter per (throttler name, key). Each increment is one Lua script, so concurrent hits
 * are never lost; keys expire on their own once the window, the block and every hit have passed. Redis
 * errors reject the returned promise: whether to fail open or closed is the caller's call.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  private readonly prefix: string;

  constructor(
    // A Cluster works too: both keys of a script share one hash tag.
    private readonly redis: Redis | Cluster,
    options: RedisThrottlerStorageOptions = {},
  ) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    redis.defineCommand(COMMAND, { numberOfKeys: 2, lua: INCREMENT_LUA });
  }

  /** Counts one hit; `ttl` and `blockDuration` in ms, the returned times in seconds, rounded up. */
  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const [stateKey, hitsKey] = this.keysFor(throttlerName, key);
    const commands = this.redis as unknown as ThrottleCommands;
    const [totalHits, timeToExpire, isBlocked, timeToBlockExpire] = await commands[COMMAND](
      stateKey,
      hitsKey,
      ttl,
      limit,
      blockDuration,
    );
    return { totalHits, timeToExpire, isBlocked: isBlocked === 1, timeToBlockExpire };
  }

  /** Quits the Redis client: gracefully when connected, at once otherwise. */
  async close(): Promise<void> {
    if (this.redis.status === 'ready') {
      await this.redis.quit();
      return;
    }
    // quit() would wait for a connection that may never come back.
    if (this.redis.status !== 'end') this.redis.disconnect();
  }

  // The braces are a cluster hash tag, keeping both keys in one slot; encoding keeps ("a:b", "c") and
  // ("a", "b:c") apart.
  private keysFor(throttlerName: string, key: string): [string, string] {
    const base = `${this.prefix}{${encodeURIComponent(throttlerName)}:${encodeURIComponent(key)}}`;
    return [`${base}:state`, `${base}:hits`];
  }
}
