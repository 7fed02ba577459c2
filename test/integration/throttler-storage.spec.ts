/**
 * One contract for every ThrottlerStorage: @nestjs/throttler's in-memory service is the reference, and the
 * Redis storage, on a real redis-server, must answer exactly as it does. Windows that must pass in real time
 * are a few hundred ms, because Redis expires keys by its own clock.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { ThrottlerStorage, ThrottlerStorageService as ReferenceStorage } from '@nestjs/throttler';
import { Redis } from 'ioredis';
import { MemoryThrottlerStorage } from '../../src/rate-limit/memory-throttler.storage.js';
import { RedisThrottlerStorage } from '../../src/rate-limit/redis-throttler.storage.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

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

function redisSubject(server: RedisServer): Subject {
  const storage = new RedisThrottlerStorage(new Redis(server.url));
  return { storage, close: () => storage.close() };
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

  it('starts counting afresh once the ttl has passed', async () => {
    const key = freshKey();
    await storage.increment(key, 300, 5, 300, 'default');
    expect((await storage.increment(key, 300, 5, 300, 'default')).totalHits).toBe(2);
    await sleep(400);
    const record = await storage.increment(key, 300, 5, 300, 'default');
    expect(record).toMatchObject({ totalHits: 1, timeToExpire: 1, isBlocked: false });
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

  it('keeps blocking for blockDuration even after the window has passed, then counts afresh', async () => {
    const key = freshKey();
    for (let i = 0; i < 2; i++) await storage.increment(key, 200, 1, 700, 'default');
    await sleep(350);
    const afterWindow = await storage.increment(key, 200, 1, 700, 'default');
    expect(afterWindow).toMatchObject({ isBlocked: true, timeToBlockExpire: 1 });
    await sleep(450);
    const afterBlock = await storage.increment(key, 200, 1, 700, 'default');
    expect(afterBlock).toMatchObject({ totalHits: 1, isBlocked: false });
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
      for (let i = 0; i < 2; i++) await storage.increment('client', 200, 1, 400, 'default');
      const keys = await redis.keys('expiry-test:*');
      expect(keys).toHaveLength(2);
      for (const key of keys) expect(await redis.pttl(key)).toBeGreaterThan(0);
      await sleep(250);
      expect(await redis.keys('expiry-test:*')).toHaveLength(2);
      await sleep(250);
      expect(await redis.keys('expiry-test:*')).toEqual([]);
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
