/**
 * One contract for every ConversationStore: SQLite on a real temp file, Redis on a real redis-server. Time
 * comes from an injected clock, so expiry is tested without sleeping. Each Redis case gets two stores on two
 * connections (two "processes"); SQLite, used by one process, gets the same store twice. Turn-lock waits here
 * are a few tens of ms; a Redis lease runs out by Redis's own clock, so the two cases that need one wait on
 * that clock for a lease or two. Lease, renewal and wait timings are checked to the millisecond on a fake
 * clock in src/conversations (the SQLite store's spec and the turn queue's).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { BastionError } from '../../src/common/bastion-error.js';
import type { ConversationMeta, NewTurn, Page } from '../../src/conversations/conversation.js';
import { ConversationBusy } from '../../src/conversations/conversation.errors.js';
import type { ConversationStore } from '../../src/conversations/conversation.store.js';
import { RedisConversationStore } from '../../src/conversations/conversation.store.redis.js';
import { SqliteConversationStore } from '../../src/conversations/conversation.store.sqlite.js';
import { TurnQueue } from '../../src/conversations/turn-queue.js';
import { redisNow, startRedis, untilRedisClock, type RedisServer } from '../support/redis-server.js';

const RETENTION_MS = 60 * 60_000;
const [ALICE, BOB] = ['alice', 'bob'];

interface Harness {
  store: ConversationStore;
  /** A second process on the same data for Redis; the same store again for SQLite (one process). */
  other: ConversationStore;
  /** Turns physically stored for an id, read behind the store's back. */
  storedTurns(id: string): Promise<number>;
  close(): Promise<void>;
}

/** The stores' injected clock; each test starts it at the real time so Redis's own expiry stays ahead. */
const clock = { at: 0, now: () => clock.at, advance: (ms: number) => void (clock.at += ms) };

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

function sqliteHarness(): Harness {
  const dir = mkdtempSync(path.join(tmpdir(), 'bastion-conversations-'));
  const file = path.join(dir, 'data', 'conversations.db');
  const store = SqliteConversationStore.open(file, { retentionMs: RETENTION_MS, now: clock.now });
  return {
    store,
    other: store,
    async storedTurns(id) {
      const db = new Database(file, { readonly: true });
      const row = db.prepare('SELECT count(*) AS n FROM turns WHERE conversation_id = ?').get(id);
      db.close();
      return (row as { n: number }).n;
    },
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let prefixSeq = 0;
function redisHarness(lockLeaseMs?: number): Harness & { redis: Redis; keyPrefix: string } {
  const keyPrefix = `test-${++prefixSeq}:`;
  const [a, b] = [new Redis(server.url), new Redis(server.url)];
  const options = { retentionMs: RETENTION_MS, now: clock.now, keyPrefix, lockLeaseMs };
  const [store, other] = [new RedisConversationStore(a, options), new RedisConversationStore(b, options)];
  return {
    store,
    other,
    redis: a,
    keyPrefix,
    storedTurns: (id) => a.llen(`${keyPrefix}conv:${id}:turns`),
    async close() {
      await Promise.all([store.close(), other.close()]);
      await Promise.all([a.quit(), b.quit()]);
    },
  };
}

function turn(prompt: string): NewTurn {
  return {
    prompt,
    answer: `answer to ${prompt}`,
    steps: [{ tool: 'read_file', outcome: 'ok', summary: 'read notes.md' }],
    usage: { inputTokens: 12, outputTokens: 5, modelCalls: 1 },
    provider: 'rules',
    model: 'rules-1',
    at: '2026-01-02T03:04:05.678Z',
  };
}

/** Takes the turn lock and keeps it until the returned function is called; resolves once held. */
async function holdLock(store: ConversationStore, id: string): Promise<() => Promise<void>> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const holding = new Promise<void>((resolve) => (held = resolve));
  const done = store.withTurnLock(id, { waitMs: 1_000 }, () => (held(), released));
  await holding;
  return () => (release(), done);
}

const iso = (ms: number) => new Date(ms).toISOString();
const byNewest = (x: ConversationMeta, y: ConversationMeta) =>
  y.createdAt.localeCompare(x.createdAt) || (y.id < x.id ? -1 : y.id > x.id ? 1 : 0);

describe.each([
  ['sqlite', sqliteHarness],
  ['redis', () => redisHarness()],
])('conversation store contract: %s', (_kind, createHarness) => {
  let harness: Harness;
  let store: ConversationStore;
  let both: ConversationStore[];
  beforeEach(() => {
    clock.at = Date.now();
    harness = createHarness();
    store = harness.store;
    both = [harness.store, harness.other];
  });
  afterEach(() => harness.close());

  it('creates a conversation with ISO times, no turns and the retention as its expiry', async () => {
    const created = await store.create({ owner: ALICE });
    expect(created).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      owner: ALICE,
      readOnly: false,
      createdAt: iso(clock.at),
      updatedAt: iso(clock.at),
      expiresAt: iso(clock.at + RETENTION_MS),
      turnCount: 0,
    });
    expect(await store.get(created.id, ALICE)).toEqual(created);
    expect(await store.turns(created.id, ALICE)).toEqual([]);
  });

  it('keeps the read-only flag', async () => {
    const { id } = await store.create({ owner: ALICE, readOnly: true });
    expect(await store.get(id, ALICE)).toMatchObject({ readOnly: true });
  });

  it('answers another owner exactly as if the conversation did not exist, and changes nothing', async () => {
    const mine = await store.create({ owner: ALICE });
    await store.appendTurn(mine.id, ALICE, turn('first'));
    const before = await store.get(mine.id, ALICE);
    clock.advance(1_000);
    expect(await store.get(mine.id, BOB)).toBeUndefined();
    expect(await store.turns(mine.id, BOB)).toBeUndefined();
    expect(await store.appendTurn(mine.id, BOB, turn('intruder'))).toBeUndefined();
    expect(await store.delete(mine.id, BOB)).toBe(false);
    expect((await store.list(BOB, { limit: 10 })).items).toEqual([]);
    expect(await store.get(mine.id, ALICE)).toEqual(before);
    expect((await store.turns(mine.id, ALICE))?.map((t) => t.prompt)).toEqual(['first']);
    for (const id of [randomUUID(), 'not-an-id', `${mine.id}:turns`]) {
      expect(await store.get(id, ALICE)).toBeUndefined();
      expect(await store.turns(id, ALICE)).toBeUndefined();
    }
  });

  it('stores whole turns numbered 1..n and moves updatedAt and expiresAt with each', async () => {
    const { id } = await store.create({ owner: ALICE });
    const appended = [];
    for (const prompt of ['one', 'two', 'three']) {
      clock.advance(10);
      appended.push(await store.appendTurn(id, ALICE, turn(prompt)));
    }
    const expected = ['one', 'two', 'three'].map((prompt, i) => ({ seq: i + 1, ...turn(prompt) }));
    expect(appended).toEqual(expected);
    expect(await store.turns(id, ALICE)).toEqual(expected);
    const moved = { turnCount: 3, updatedAt: iso(clock.at), expiresAt: iso(clock.at + RETENTION_MS) };
    expect(await store.get(id, ALICE)).toMatchObject(moved);
  });

  it("lists newest first across pages with no duplicates, ties broken by id, and no one else's", async () => {
    const mine: ConversationMeta[] = [];
    for (let i = 0; i < 7; i++) {
      if (i !== 3 && i !== 4) clock.advance(1); // 2, 3 and 4 share a millisecond, across a page break
      mine.push(await store.create({ owner: ALICE }));
      if (i % 3 === 0) await store.create({ owner: BOB });
    }
    const pages: ConversationMeta[][] = [];
    let cursor: string | undefined;
    do {
      const handle = pages.length % 2 ? harness.other : store;
      const page: Page<ConversationMeta> = await handle.list(ALICE, { limit: 3, cursor });
      pages.push(page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages.map((items) => items.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual([...mine].sort(byNewest));
    expect(await store.list(ALICE, { limit: 7 })).toEqual({ items: [...mine].sort(byNewest) });
  });

  it('rejects a cursor it did not issue as bad input', async () => {
    const encode = (text: string) => Buffer.from(text).toString('base64url');
    const forged = [
      encode('12:not-a-uuid'),
      encode(`x:${randomUUID()}`),
      `${encode(`12:${randomUUID()}`)}==`,
    ];
    for (const cursor of ['garbage!', '', ...forged]) {
      const listing = store.list(ALICE, { limit: 5, cursor });
      await expect(listing).rejects.toBeInstanceOf(BastionError);
      await expect(listing).rejects.toMatchObject({ code: 'invalid_cursor' });
    }
  });

  it('erases a deleted conversation and its turns at once; a second delete is false', async () => {
    const { id } = await store.create({ owner: ALICE });
    await store.appendTurn(id, ALICE, turn('one'));
    await store.appendTurn(id, ALICE, turn('two'));
    expect(await harness.storedTurns(id)).toBe(2);
    expect(await store.delete(id, ALICE)).toBe(true);
    expect(await harness.storedTurns(id)).toBe(0);
    expect(await store.get(id, ALICE)).toBeUndefined();
    expect(await store.turns(id, ALICE)).toBeUndefined();
    expect(await store.appendTurn(id, ALICE, turn('three'))).toBeUndefined();
    expect((await store.list(ALICE, { limit: 10 })).items).toEqual([]);
    expect(await store.delete(id, ALICE)).toBe(false);
  });

  it('hides a conversation once expiresAt passes, before any purge; a turn slides the expiry', async () => {
    const { id } = await store.create({ owner: ALICE });
    clock.advance(RETENTION_MS - 1);
    expect(await store.get(id, ALICE)).toBeDefined();
    expect(await store.appendTurn(id, ALICE, turn('keep it alive'))).toMatchObject({ seq: 1 });
    clock.advance(RETENTION_MS - 1);
    expect((await store.get(id, ALICE))?.expiresAt).toBe(iso(clock.at + 1));
    clock.advance(1);
    expect(await store.get(id, ALICE)).toBeUndefined();
    expect(await store.turns(id, ALICE)).toBeUndefined();
    expect((await store.list(ALICE, { limit: 10 })).items).toEqual([]);
    expect(await store.appendTurn(id, ALICE, turn('too late'))).toBeUndefined();
    expect(await store.delete(id, ALICE)).toBe(false);
  });

  it('purges exactly the expired conversations and returns how many', async () => {
    const start = clock.at;
    const [kept, expired, bobs] = [
      await store.create({ owner: ALICE }),
      await store.create({ owner: ALICE }),
      await store.create({ owner: BOB }),
    ];
    await store.appendTurn(expired.id, ALICE, turn('soon gone'));
    clock.advance(1_000);
    const later = await store.create({ owner: ALICE });
    await store.appendTurn(kept.id, ALICE, turn('slides the expiry'));
    clock.at = start + RETENTION_MS;
    expect(await store.purgeExpired(new Date(clock.at))).toBe(2);
    expect(await store.purgeExpired()).toBe(0);
    expect(await harness.storedTurns(expired.id)).toBe(0);
    expect(await store.get(bobs.id, BOB)).toBeUndefined();
    expect((await store.list(ALICE, { limit: 10 })).items.map((c) => c.id)).toEqual([later.id, kept.id]);
    expect(await store.turns(kept.id, ALICE)).toHaveLength(1);
  });

  it('serializes 20 concurrent turns that read the history, wait, then append: 1..20, no gaps', async () => {
    const { id } = await store.create({ owner: ALICE });
    const appended = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const handle = i % 2 ? harness.other : store;
        return handle.withTurnLock(id, { waitMs: 10_000 }, async () => {
          const history = (await handle.turns(id, ALICE)) ?? [];
          await sleep(2);
          return handle.appendTurn(id, ALICE, turn(`after ${history.length}`));
        });
      }),
    );
    const turns = (await store.turns(id, ALICE)) ?? [];
    const seqs = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(turns.map((t) => t.seq)).toEqual(seqs);
    // Each turn saw every turn before it: nothing interleaved.
    expect(turns.map((t) => t.prompt)).toEqual(seqs.map((seq) => `after ${seq - 1}`));
    expect(appended.map((t) => t?.seq).sort((x = 0, y = 0) => x - y)).toEqual(seqs);
    expect((await store.get(id, ALICE))?.turnCount).toBe(20);
  });

  it('gives up with ConversationBusy when the turn is held longer than waitMs', async () => {
    const { id } = await store.create({ owner: ALICE });
    const release = await holdLock(store, id);
    const fn = jest.fn(async () => 'ran');
    for (const handle of both) {
      await expect(handle.withTurnLock(id, { waitMs: 40 }, fn)).rejects.toBeInstanceOf(ConversationBusy);
    }
    expect(fn).not.toHaveBeenCalled();
    await release();
    await expect(harness.other.withTurnLock(id, { waitMs: 0 }, fn)).resolves.toBe('ran');
  });

  it('stops waiting when the signal aborts, with its reason, and never takes the lock', async () => {
    const { id } = await store.create({ owner: ALICE });
    const release = await holdLock(store, id);
    const fn = jest.fn(async () => 'ran');
    const controller = new AbortController();
    const reason = new Error('client went away');
    const waiting = both.map((handle) =>
      handle.withTurnLock(id, { waitMs: 5_000, signal: controller.signal }, fn),
    );
    setTimeout(() => controller.abort(reason), 30);
    for (const waiter of waiting) await expect(waiter).rejects.toBe(reason);
    const already = harness.other.withTurnLock(id, { waitMs: 5_000, signal: controller.signal }, fn);
    await expect(already).rejects.toBe(reason);
    await release();
    expect(fn).not.toHaveBeenCalled();
    for (const handle of both) {
      await expect(handle.withTurnLock(id, { waitMs: 0 }, fn)).resolves.toBe('ran');
    }
  });

  it('releases the lock when its holder throws', async () => {
    const { id } = await store.create({ owner: ALICE });
    const boom = new Error('model failed');
    await expect(
      store.withTurnLock(id, { waitMs: 0 }, async () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    await expect(harness.other.withTurnLock(id, { waitMs: 0 }, async () => 'next')).resolves.toBe('next');
  });

  it('answers ping', () => expect(store.ping()).resolves.toBeUndefined());
});

describe('sqlite conversation store', () => {
  let dir: string;
  beforeEach(() => {
    clock.at = Date.now();
    dir = mkdtempSync(path.join(tmpdir(), 'bastion-conversations-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const open = (file: string) =>
    SqliteConversationStore.open(file, { retentionMs: RETENTION_MS, now: clock.now });

  it('keeps every conversation and turn across a restart, in a private 0700 directory and 0600 file', async () => {
    const file = path.join(dir, 'state', 'conversations.db');
    const first = open(file);
    const meta = await first.create({ owner: ALICE, readOnly: true });
    await first.appendTurn(meta.id, ALICE, turn('remember me'));
    const before = { meta: await first.get(meta.id, ALICE), turns: await first.turns(meta.id, ALICE) };
    await first.close();
    const reopened = open(file);
    try {
      expect({
        meta: await reopened.get(meta.id, ALICE),
        turns: await reopened.turns(meta.id, ALICE),
      }).toEqual(before);
      expect((await reopened.list(ALICE, { limit: 5 })).items).toEqual([before.meta]);
    } finally {
      await reopened.close();
    }
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('leaves no trace of an erased conversation in the database file or its write-ahead log', async () => {
    const file = path.join(dir, 'conversations.db');
    const store = open(file);
    const kept = await store.create({ owner: ALICE });
    await store.appendTurn(kept.id, ALICE, turn('keep-this-marker'));
    const erased = await store.create({ owner: ALICE });
    await store.appendTurn(erased.id, ALICE, turn('erase-this-marker'));
    expect(await store.delete(erased.id, ALICE)).toBe(true);
    const onDisk = () =>
      [file, `${file}-wal`]
        .filter((f) => existsSync(f))
        .map((f) => readFileSync(f).toString('latin1'))
        .join('');
    try {
      expect(onDisk()).not.toContain('erase-this-marker');
      expect((await store.turns(kept.id, ALICE))?.[0]?.prompt).toBe('keep-this-marker');
    } finally {
      await store.close();
    }
    expect(onDisk()).not.toContain('erase-this-marker');
  });

  it('refuses, naming the versions, a file written by a newer schema', () => {
    const file = path.join(dir, 'conversations.db');
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    expect(() => open(file)).toThrow(/schema version 99, newer than this Bastion knows \(2\)/);
  });
});

describe('redis conversation store', () => {
  let harness: ReturnType<typeof redisHarness>;
  const key = (suffix: string) => `${harness.keyPrefix}${suffix}`;
  const LEASE_MS = 150;
  beforeEach(() => {
    clock.at = Date.now();
    harness = redisHarness(LEASE_MS);
  });
  afterEach(() => harness.close());

  it('sets Redis expiry at expiresAt and drops ids Redis already expired from the owner index on list', async () => {
    const [gone, kept] = [
      await harness.store.create({ owner: ALICE }),
      await harness.store.create({ owner: ALICE }),
    ];
    expect(await harness.redis.call('PEXPIRETIME', key(`conv:${kept.id}`))).toBe(Date.parse(kept.expiresAt));
    await harness.redis.del(key(`conv:${gone.id}`)); // as Redis's own expiry would
    expect((await harness.store.list(ALICE, { limit: 10 })).items.map((c) => c.id)).toEqual([kept.id]);
    expect(await harness.redis.zrange(key(`owner:${ALICE}:convs`), 0, -1)).toEqual([kept.id]);
  });

  it('renews the lease while a slow turn runs, so another process cannot take the lock', async () => {
    // Redis expires the lock by its own clock, which no fake clock reaches: the turn outlives two 150 ms
    // leases by Redis's clock. The renewal schedule itself is timed on a fake clock in the SQLite store's spec.
    const id = randomUUID();
    const release = await holdLock(harness.store, id);
    await untilRedisClock(harness.redis, await redisNow(harness.redis), 2 * LEASE_MS);
    const thief = harness.other.withTurnLock(id, { waitMs: 0 }, async () => 'stolen');
    await expect(thief).rejects.toBeInstanceOf(ConversationBusy);
    await release();
  });

  it('takes over the lock of a crashed holder once its lease runs out', async () => {
    const id = randomUUID();
    // Expired by Redis's clock: a 50 ms lease left behind.
    await harness.redis.set(key(`lock:${id}`), 'dead-process', 'PX', 50);
    await expect(harness.other.withTurnLock(id, { waitMs: 2_000 }, async () => 'mine')).resolves.toBe('mine');
  });

  it("leaves the caller's connection open on close", async () => {
    await harness.store.close();
    expect(await harness.redis.ping()).toBe('PONG');
  });
});

describe('turn queue', () => {
  it('serves waiters in arrival order and forgets a key once nobody holds or awaits it', async () => {
    const queue = new TurnQueue();
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2, 3].map((n) =>
        queue.run('key', { waitMs: 1_000 }, async () => {
          await sleep(3 - n);
          order.push(n);
        }),
      ),
    );
    expect(order).toEqual([0, 1, 2, 3]);
    expect(queue.size).toBe(0);
  });
});
