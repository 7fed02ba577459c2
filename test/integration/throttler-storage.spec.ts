/**
 * One contract for every ThrottlerStorage: @nestjs/throttler's in-memory service is the reference, and the
 * Redis storage, on a real redis-server, must answer exactly as it does. The in-process storages read the
 * time from Date.now(), so their windows and blocks are timed on Jest's fake clock, to the millisecond. The
 * Redis storage reads Redis's clock (Lua TIME), which no fake clock reaches: its timed cases use windows of
 * 50-100 ms and wait on Redis's own clock, never on a guess of ours.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { ThrottlerStorage, ThrottlerStorageService as ReferenceStorage } from '@nestjs/throttler';
import { Redis } from 'ioredis';
import { MemoryThrottlerStorage } from '../../src/rate-limit/memory-throttler.storage.js';
import { RedisThrottlerStorage } from '../../src/rate-limit/redis-throttler.storage.js';
import { redisNow, startRedis, untilRedisClock, type RedisServer } from '../support/redis-server.js';

// @nestjs/throttler is CommonJS and require()s Nest 12's ES-module @nestjs/common, which Jest's loader
// cannot do before Node 24.9. The reference service needs only the @Injectable() marker from it.
jest.mock('@nestjs/common', () => ({ Injectable: () => (target: unknown) => target }));
const { ThrottlerStorageService } = (await import('@nestjs/throttler/dist/throttler.service.js')) as {
  ThrottlerStorageService: new () => ReferenceStorage;
};

const MINUTE = 60_000;

interface Subject {
  storage: ThrottlerStorage;
  close(): Promise<void>;
}

function memorySubject(): Subject {
  const storage = new ThrottlerStorageService();
  return { storage, close: async () => storage.onApplicationShutdown() };
}

function ownMemorySubject(): Subject {
  const storage = new MemoryThrottlerStorage();
  return { storage, close: async () => storage.close() };
}

function redisSubject(server: RedisServer): Subject & { redis: Redis } {
  const redis = new Redis(server.url);
  const storage = new RedisThrottlerStorage(redis);
  return { storage, redis, close: () => storage.close() };
}

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

let keySeq = 0;
const freshKey = () => `client-${++keySeq}`;

describe.each([
  ['reference (in-memory ThrottlerStorageService)', (): Subject => memorySubject()],
  ['memory', (): Subject => ownMemorySubject()],
  ['redis', (): Subject => redisSubject(server)],
])('throttler storage contract: %s', (_name, createSubject) => {
  let subject: Subject;
  let storage: ThrottlerStorage;
  beforeAll(() => {
    subject = createSubject();
    storage = subject.storage;
  });
  afterAll(() => subject.close());

  it('counts hits within one window and reports the seconds left in it, rounded up', async () => {
    const key = freshKey();
    const totals: number[] = [];
    for (let i = 0; i < 3; i++) {
      const record = await storage.increment(key, MINUTE, 5, MINUTE, 'default');
      expect(record.isBlocked).toBe(false);
      expect(record.timeToExpire).toBe(60);
      expect(record.timeToBlockExpire).toBeLessThanOrEqual(0);
      totals.push(record.totalHits);
    }
    expect(totals).toEqual([1, 2, 3]);
  });

  it('blocks the hit after the limit and stops counting while blocked', async () => {
    const key = freshKey();
    await storage.increment(key, MINUTE, 2, 90_500, 'default');
    await storage.increment(key, MINUTE, 2, 90_500, 'default');
    const blocked = await storage.increment(key, MINUTE, 2, 90_500, 'default');
    expect(blocked).toEqual({ totalHits: 3, timeToExpire: 60, isBlocked: true, timeToBlockExpire: 91 });
    const stillBlocked = await storage.increment(key, MINUTE, 2, 90_500, 'default');
    expect(stillBlocked).toEqual({ totalHits: 3, timeToExpire: 60, isBlocked: true, timeToBlockExpire: 91 });
  });

  it('without a block duration, refuses only while the window is full and reports when its oldest hit expires', async () => {
    const key = freshKey();
    const first = await storage.increment(key, MINUTE, 2, 0, 'default');
    await storage.increment(key, MINUTE, 2, 0, 'default');
    const refused = await storage.increment(key, MINUTE, 2, 0, 'default');
    expect(first).toEqual({ totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 });
    expect(refused).toEqual({ totalHits: 3, timeToExpire: 60, isBlocked: true, timeToBlockExpire: 60 });
    expect((await storage.increment(key, MINUTE, 2, 0, 'default')).totalHits).toBe(3);
  });

  it('keeps separate keys independent', async () => {
    const [blockedKey, otherKey] = [freshKey(), freshKey()];
    for (let i = 0; i < 2; i++) await storage.increment(blockedKey, MINUTE, 1, MINUTE, 'default');
    expect((await storage.increment(blockedKey, MINUTE, 1, MINUTE, 'default')).isBlocked).toBe(true);
    const other = await storage.increment(otherKey, MINUTE, 1, MINUTE, 'default');
    expect(other).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it('counts separate throttler names on one key independently', async () => {
    const key = freshKey();
    for (let i = 0; i < 3; i++) await storage.increment(key, MINUTE, 10, MINUTE, 'short');
    const long = await storage.increment(key, MINUTE, 10, MINUTE, 'long');
    const short = await storage.increment(key, MINUTE, 10, MINUTE, 'short');
    expect([long.totalHits, short.totalHits]).toEqual([1, 4]);
  });
});

describe.each([
  ['reference (in-memory ThrottlerStorageService)', (): Subject => memorySubject()],
  ['memory', (): Subject => ownMemorySubject()],
])('throttler storage windows on a fake clock: %s', (_name, createSubject) => {
  let subject: Subject;
  let storage: ThrottlerStorage;
  beforeEach(() => {
    jest.useFakeTimers();
    subject = createSubject();
    storage = subject.storage;
  });
  afterEach(async () => {
    await subject.close();
    jest.useRealTimers();
  });

  it('counts a hit until exactly ttl after it, then starts counting afresh', async () => {
    const key = freshKey();
    await storage.increment(key, MINUTE, 5, MINUTE, 'default');
    expect((await storage.increment(key, MINUTE, 5, MINUTE, 'default')).totalHits).toBe(2);
    jest.advanceTimersByTime(MINUTE - 1);
    // The window has 1 ms left: both hits still count.
    const last = await storage.increment(key, MINUTE, 5, MINUTE, 'default');
    expect(last).toMatchObject({ totalHits: 3, timeToExpire: 1, isBlocked: false });
    jest.advanceTimersByTime(1);
    // The first two are a minute old: only the hit made 1 ms ago and this one count, in a fresh window.
    const fresh = await storage.increment(key, MINUTE, 5, MINUTE, 'default');
    expect(fresh).toMatchObject({ totalHits: 2, timeToExpire: 60, isBlocked: false });
  });

  it('keeps blocking for blockDuration even after the window has passed, then counts afresh', async () => {
    const key = freshKey();
    const BLOCK = 90_000;
    for (let i = 0; i < 2; i++) await storage.increment(key, MINUTE, 1, BLOCK, 'default');
    jest.advanceTimersByTime(MINUTE);
    const afterWindow = await storage.increment(key, MINUTE, 1, BLOCK, 'default');
    expect(afterWindow).toMatchObject({ isBlocked: true, timeToBlockExpire: 30 });
    jest.advanceTimersByTime(BLOCK - MINUTE - 1);
    const lastBlocked = await storage.increment(key, MINUTE, 1, BLOCK, 'default');
    expect(lastBlocked).toMatchObject({ isBlocked: true, timeToBlockExpire: 1 });
    jest.advanceTimersByTime(1);
    const afterBlock = await storage.increment(key, MINUTE, 1, BLOCK, 'default');
    expect(afterBlock).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it('without a block duration (as the rate limiter counts), admits again the moment the oldest hit expires', async () => {
    const key = freshKey();
    await storage.increment(key, MINUTE, 2, 0, 'default');
    jest.advanceTimersByTime(10_000);
    await storage.increment(key, MINUTE, 2, 0, 'default');
    jest.advanceTimersByTime(MINUTE - 10_000 - 1);
    const refused = await storage.increment(key, MINUTE, 2, 0, 'default');
    expect(refused).toMatchObject({ totalHits: 3, isBlocked: true, timeToBlockExpire: 1 });
    jest.advanceTimersByTime(1);
    const admitted = await storage.increment(key, MINUTE, 2, 0, 'default');
    expect(admitted).toMatchObject({ totalHits: 2, isBlocked: false, timeToBlockExpire: 0 });
    // The second hit holds its place until its own minute is up.
    expect(await storage.increment(key, MINUTE, 2, 0, 'default')).toMatchObject({
      isBlocked: true,
      timeToBlockExpire: 10,
    });
  });
});

describe("redis throttler storage windows on Redis's clock", () => {
  // Redis's clock cannot be faked: the hits of one window must land within it on a busy machine too, and
  // the test then waits for Redis's clock to pass it.
  const WINDOW = 500;
  let subject: ReturnType<typeof redisSubject>;
  beforeAll(() => {
    subject = redisSubject(server);
  });
  afterAll(() => subject.close());

  it('starts counting afresh once the ttl has passed', async () => {
    const { storage, redis } = subject;
    const key = freshKey();
    await storage.increment(key, WINDOW, 5, WINDOW, 'default');
    expect((await storage.increment(key, WINDOW, 5, WINDOW, 'default')).totalHits).toBe(2);
    await untilRedisClock(redis, await redisNow(redis), WINDOW);
    const record = await storage.increment(key, WINDOW, 5, WINDOW, 'default');
    expect(record).toMatchObject({ totalHits: 1, timeToExpire: 1, isBlocked: false });
  });

  it('keeps blocking for blockDuration after the window has passed', async () => {
    const { storage, redis } = subject;
    const key = freshKey();
    for (let i = 0; i < 2; i++) await storage.increment(key, WINDOW, 1, MINUTE, 'default');
    await untilRedisClock(redis, await redisNow(redis), WINDOW);
    const afterWindow = await storage.increment(key, WINDOW, 1, MINUTE, 'default');
    expect(afterWindow).toMatchObject({ isBlocked: true, timeToBlockExpire: 60 });
  });

  it('counts afresh once the block has passed', async () => {
    const { storage, redis } = subject;
    const key = freshKey();
    for (let i = 0; i < 2; i++) await storage.increment(key, WINDOW, 1, 2 * WINDOW, 'default');
    expect((await storage.increment(key, WINDOW, 1, 2 * WINDOW, 'default')).isBlocked).toBe(true);
    await untilRedisClock(redis, await redisNow(redis), 2 * WINDOW);
    const afterBlock = await storage.increment(key, WINDOW, 1, 2 * WINDOW, 'default');
    expect(afterBlock).toMatchObject({ totalHits: 1, isBlocked: false });
  });
});

describe('redis throttler storage across instances', () => {
  it('counts 200 concurrent hits from two instances sharing one Redis exactly once each', async () => {
    const [a, b] = [redisSubject(server), redisSubject(server)];
    try {
      const key = freshKey();
      const hits = Array.from({ length: 200 }, (_, i) =>
        (i % 2 ? a : b).storage.increment(key, MINUTE, 1_000, MINUTE, 'default'),
      );
      const totals = (await Promise.all(hits)).map((record) => record.totalHits).sort((x, y) => x - y);
      expect(totals).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect((await a.storage.increment(key, MINUTE, 1_000, MINUTE, 'default')).totalHits).toBe(201);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('lets its keys expire on their own once the window and the block have passed', async () => {
    const redis = new Redis(server.url);
    const storage = new RedisThrottlerStorage(redis, { prefix: 'expiry-test:' });
    try {
      // A block outlasting the window keeps the keys for the block, not the window.
      for (let i = 0; i < 2; i++) await storage.increment('blocked', 500, 1, MINUTE, 'default');
      const kept = await redis.keys('expiry-test:*blocked*');
      expect(kept).toHaveLength(2);
      for (const key of kept) expect(await redis.pttl(key)).toBeGreaterThan(MINUTE - 5_000);
      for (let i = 0; i < 2; i++) await storage.increment('client', 500, 1, 1000, 'default');
      const keys = await redis.keys('expiry-test:*client*');
      expect(keys).toHaveLength(2);
      for (const key of keys) expect(await redis.pttl(key)).toBeGreaterThan(0);
      await untilRedisClock(redis, await redisNow(redis), 1000);
      expect(await redis.keys('expiry-test:*client*')).toEqual([]);
    } finally {
      await storage.close();
    }
  });

  it('rejects with the error Redis returns instead of swallowing it', async () => {
    const redis = new Redis(server.url);
    const storage = new RedisThrottlerStorage(redis, { prefix: 'wrongtype-test:' });
    try {
      await storage.increment('client', MINUTE, 5, MINUTE, 'default');
      for (const key of await redis.keys('wrongtype-test:*')) await redis.set(key, 'not a throttle record');
      await expect(storage.increment('client', MINUTE, 5, MINUTE, 'default')).rejects.toThrow(/WRONGTYPE/);
    } finally {
      await storage.close();
    }
  });

  it('rejects once Redis has gone away instead of counting nothing', async () => {
    const doomed = await startRedis();
    const redis = new Redis(doomed.url, { retryStrategy: () => null });
    const storage = new RedisThrottlerStorage(redis);
    try {
      expect((await storage.increment('client', MINUTE, 5, MINUTE, 'default')).totalHits).toBe(1);
      const ended = new Promise((resolve) => redis.once('end', resolve));
      await doomed.stop();
      await ended;
      await expect(storage.increment('client', MINUTE, 5, MINUTE, 'default')).rejects.toThrow(
        /Connection is closed/,
      );
    } finally {
      await storage.close();
      await doomed.stop();
    }
  });
});
