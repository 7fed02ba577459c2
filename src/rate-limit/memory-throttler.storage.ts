import type { ThrottlerStorage } from '@nestjs/throttler';
import type { ThrottlerStorageRecord } from './redis-throttler.storage.js';

/** One counter: the expiry times of its live hits, oldest first, from `head` on. */
interface Counter {
  hits: number[];
  head: number;
  expiresAt: number;
  blockExpiresAt: number;
  blocked: boolean;
}

const SWEEP_MS = 60_000;

/**
 * In-process counters answering exactly as @nestjs/throttler's ThrottlerStorageService (the contract suite
 * checks both), in constant time per request: that service filters every live hit of a key on each request,
 * which at a few thousand requests per window costs more than serving the request. Hits of one counter
 * expire in the order they were made (the window is fixed per throttler), so expired ones are dropped
 * from the front.
 */
export class MemoryThrottlerStorage implements ThrottlerStorage {
  private readonly counters = new Map<string, Counter>();
  private sweeper: NodeJS.Timeout | undefined;

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const now = Date.now();
    const counter = this.counterFor(`${throttlerName}\u0000${key}`, now, ttl);
    dropExpired(counter, now);
    if (counter.expiresAt <= now) counter.expiresAt = now + ttl;
    const timeToExpire = seconds(counter.expiresAt - now);
    if (blockDuration <= 0) return withoutBlock(counter, now, ttl, limit, timeToExpire);

    if (!counter.blocked) counter.hits.push(now + ttl);
    if (live(counter) > limit && !counter.blocked) {
      counter.blocked = true;
      counter.blockExpiresAt = now + blockDuration;
    }
    const timeToBlockExpire = seconds(counter.blockExpiresAt - now);
    if (timeToBlockExpire <= 0 && counter.blocked) {
      counter.blocked = false;
      counter.hits = [now + ttl];
      counter.head = 0;
    }
    return { totalHits: live(counter), timeToExpire, isBlocked: counter.blocked, timeToBlockExpire };
  }

  /** Stops the sweep and forgets every counter. */
  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.counters.clear();
  }

  private counterFor(id: string, now: number, ttl: number): Counter {
    let counter = this.counters.get(id);
    if (!counter) {
      counter = { hits: [], head: 0, expiresAt: now + ttl, blockExpiresAt: 0, blocked: false };
      this.counters.set(id, counter);
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    }
    return counter;
  }

  /** Forgets counters with nothing left to remember, so memory follows the clients of the last window. */
  private sweep(now = Date.now()): void {
    for (const [id, counter] of this.counters) {
      dropExpired(counter, now);
      const idle = counter.expiresAt <= now && !(counter.blocked && counter.blockExpiresAt > now);
      if (idle && live(counter) === 0) this.counters.delete(id);
    }
  }
}

/** The service's answer when blocking is off: refuse while the window is full, count nothing then. */
function withoutBlock(
  counter: Counter,
  now: number,
  ttl: number,
  limit: number,
  timeToExpire: number,
): ThrottlerStorageRecord {
  const isBlocked = live(counter) >= limit;
  if (!isBlocked) counter.hits.push(now + ttl);
  const oldest = counter.hits[counter.head];
  const timeToBlockExpire = oldest === undefined ? timeToExpire : seconds(oldest - now);
  return {
    totalHits: live(counter) + (isBlocked ? 1 : 0),
    timeToExpire,
    isBlocked,
    timeToBlockExpire: isBlocked ? timeToBlockExpire : 0,
  };
}

function dropExpired(counter: Counter, now: number): void {
  const { hits } = counter;
  while (counter.head < hits.length && (hits[counter.head] as number) <= now) counter.head++;
  // Compact once the dropped prefix is most of the array.
  if (counter.head > 64 && counter.head * 2 > hits.length) {
    counter.hits = hits.slice(counter.head);
    counter.head = 0;
  }
}

function live(counter: Counter): number {
  return counter.hits.length - counter.head;
}

function seconds(ms: number): number {
  return Math.ceil(ms / 1000);
}
