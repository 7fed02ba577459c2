/**
 * One contract for every API key store: the keys file on a real temp directory, Redis on a real
 * redis-server. Each case gets two stores on the same keys, as two server processes would have: for the
 * file, two stores on one file; for Redis, two stores on two connections, each watching for changes. The
 * Redis stores read time from an injected clock, so their staleness bound is tested without sleeping.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { parseKey, secretMatches } from '../../src/auth/api-key.js';
import { KeyStore, KeyStoreError, type ApiKeyStore, type KeyRecord } from '../../src/auth/key-store.js';
import { KeyStoreUnavailable, RedisKeyStore } from '../../src/auth/key-store.redis.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const MAX_STALE_MS = 1_000;

interface Harness {
  store: ApiKeyStore;
  /** A second process on the same keys. */
  other: ApiKeyStore;
  /** Lets the other store's staleness bound pass: nothing for the file, which is read on every change. */
  settle(): void;
  /** Everything stored, raw, read behind the stores' back. */
  stored(): Promise<string>;
  close(): Promise<void>;
}

/** The Redis stores' injected clock; each test starts it at the real time. */
const clock = { at: 0, now: () => clock.at, advance: (ms: number) => void (clock.at += ms) };

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

function fileHarness(): Harness {
  const dir = mkdtempSync(path.join(tmpdir(), 'bastion-keys-'));
  const file = path.join(dir, 'data', 'keys.json');
  return {
    store: new KeyStore(file),
    other: new KeyStore(file),
    settle: () => undefined,
    stored: async () => readFileSync(file, 'utf8'),
    async close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let prefixSeq = 0;
function redisOptions() {
  return { keyPrefix: `test-${++prefixSeq}:`, now: clock.now, maxStaleMs: MAX_STALE_MS };
}

function redisHarness(): Harness {
  const options = redisOptions();
  const [a, b] = [new Redis(server.url), new Redis(server.url)];
  const [store, other] = [new RedisKeyStore(a, options).watch(), new RedisKeyStore(b, options).watch()];
  return {
    store,
    other,
    settle: () => clock.advance(MAX_STALE_MS),
    stored: async () => JSON.stringify(await a.hgetall(`${options.keyPrefix}{apikeys}`)),
    async close() {
      await Promise.all([store.close(), other.close()]);
      await Promise.all([a.quit(), b.quit()]);
    },
  };
}

/** Polls `check` with real time until it holds or `ms` pass; returns how long it took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

describe.each([
  ['file', fileHarness],
  ['redis', redisHarness],
])('API key store contract: %s', (_kind, createHarness) => {
  let harness: Harness;
  let store: ApiKeyStore;
  beforeEach(() => {
    clock.at = Date.now();
    harness = createHarness();
    store = harness.store;
  });
  afterEach(() => harness.close());

  it('creates a key that both processes find by its id, with the record it was given', async () => {
    const { record, key } = await store.create({
      client: 'cursor',
      scopes: ['files:read', 'files:write', 'files:read'],
      workspace: '/srv/tenant-a',
      tier: 'heavy',
    });
    expect(parseKey(key)?.id).toBe(record.id);
    expect(record).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{12}$/),
      client: 'cursor',
      scopes: ['files:read', 'files:write'],
      workspace: '/srv/tenant-a',
      tier: 'heavy',
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      created: expect.any(String),
    });
    expect(await store.find(record.id)).toEqual(record);
    expect(await harness.other.find(record.id)).toEqual(record);
    expect(await harness.other.list()).toEqual([record]);
    expect(await store.find('0123456789ab')).toBeUndefined();
  });

  it('stores a digest of the secret, never the key or the secret', async () => {
    const { record, key } = await store.create({ client: 'vscode', scopes: ['agent'] });
    const secret = (parseKey(key) as { secret: string }).secret;
    const stored = await harness.stored();
    expect(stored).toContain(record.hash);
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(key);
    const found = (await harness.other.find(record.id)) as KeyRecord;
    expect(secretMatches(secret, found.hash)).toBe(true);
  });

  it('refuses a client name that is not a plain name, and a key without scopes', async () => {
    await expect(store.create({ client: 'a b', scopes: ['agent'] })).rejects.toMatchObject({
      code: 'invalid_client',
    });
    await expect(store.create({ client: 'ok', scopes: [] })).rejects.toBeInstanceOf(KeyStoreError);
    expect(await store.list()).toEqual([]);
  });

  it('revokes a key once, keeps the record, and says when there is no such key', async () => {
    const { record } = await store.create({ client: 'desktop', scopes: ['files:read'] });
    expect(await store.revoke(record.id)).toBe(true);
    const revoked = (await store.find(record.id)) as KeyRecord;
    expect(Date.parse(revoked.revoked as string)).not.toBeNaN();
    expect(await store.revoke(record.id)).toBe(true);
    expect(await store.find(record.id)).toEqual(revoked);
    expect(await store.revoke('0123456789ab')).toBe(false);
    expect(await store.list()).toEqual([revoked]);
  });

  it('a revocation by one process is seen by the other within its staleness bound', async () => {
    const { record } = await store.create({ client: 'shared', scopes: ['files:read'] });
    expect((await harness.other.find(record.id))?.revoked).toBeUndefined();
    await store.revoke(record.id);
    harness.settle();
    expect((await harness.other.find(record.id))?.revoked).toEqual(expect.any(String));
  });
});

describe('redis key store: staleness and outages', () => {
  const connections: Redis[] = [];
  const stores: RedisKeyStore[] = [];
  const connect = (url = server.url): Redis => {
    // As the server connects, commands fail at once while Redis is away; no reconnecting after an outage.
    const redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => undefined);
    connections.push(redis);
    return redis;
  };
  const open = (redis: Redis, options: ReturnType<typeof redisOptions>): RedisKeyStore => {
    const store = new RedisKeyStore(redis, options);
    stores.push(store);
    return store;
  };
  const ready = (redis: Redis) => within(2_000, async () => redis.status === 'ready');
  beforeEach(() => {
    clock.at = Date.now();
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    // disconnect() on an ended connection arms a 2 s timer in ioredis: only live ones.
    for (const redis of connections.splice(0)) if (redis.status !== 'end') redis.disconnect();
  });

  it('hears a revocation made elsewhere at once, without waiting for the bound', async () => {
    const options = redisOptions();
    const [a, b] = [connect(), connect()];
    await Promise.all([ready(a), ready(b)]);
    const cli = open(a, options);
    const server2 = open(b, options).watch();
    const { record } = await cli.create({ client: 'ci', scopes: ['files:read'] });
    await within(1_000, async () => (await server2.find(record.id)) !== undefined);
    await cli.revoke(record.id);
    // The clock stands still: only the published change can make the cached copy reload.
    await within(1_000, async () => (await server2.find(record.id))?.revoked !== undefined);
  });

  it('without the change message, serves its copy until the bound and then reloads', async () => {
    const options = redisOptions();
    const [a, b] = [connect(), connect()];
    await Promise.all([ready(a), ready(b)]);
    const cli = open(a, options);
    const deaf = open(b, options); // not watching: as if every message were lost
    const { record } = await cli.create({ client: 'ci', scopes: ['files:read'] });
    expect((await deaf.find(record.id))?.revoked).toBeUndefined();
    await cli.revoke(record.id);
    clock.advance(MAX_STALE_MS - 1);
    // Still within the bound: the copy is used, and checking the version is left to the background.
    expect((await deaf.find(record.id))?.revoked).toBeUndefined();
    clock.advance(1);
    expect((await deaf.find(record.id))?.revoked).toEqual(expect.any(String));
  });

  it('fails closed when Redis is unreachable: the copy serves only until the bound', async () => {
    const own = await startRedis();
    try {
      const redis = connect(own.url);
      await ready(redis);
      const store = open(redis, redisOptions());
      const { record } = await store.create({ client: 'ci', scopes: ['files:read'] });
      expect(await store.find(record.id)).toEqual(record);
      await own.stop();
      await within(2_000, async () => redis.status === 'end');
      clock.advance(MAX_STALE_MS - 1);
      expect(await store.find(record.id)).toEqual(record);
      clock.advance(1);
      await expect(store.find(record.id)).rejects.toBeInstanceOf(KeyStoreUnavailable);
      await expect(store.find(record.id)).rejects.toMatchObject({ statusCode: 503 });
    } finally {
      await own.stop();
    }
  });

  it('refuses every lookup when a stored record is not valid, rather than guessing', async () => {
    const options = redisOptions();
    const redis = connect();
    await ready(redis);
    const store = open(redis, options);
    const { record } = await store.create({ client: 'ci', scopes: ['files:read'] });
    await redis.hset(`${options.keyPrefix}{apikeys}`, 'ffffffffffff', '{"id":"ffffffffffff"}');
    await redis.incr(`${options.keyPrefix}{apikeys}:version`);
    clock.advance(MAX_STALE_MS);
    await expect(store.find(record.id)).rejects.toBeInstanceOf(KeyStoreUnavailable);
    await expect(store.list()).rejects.toMatchObject({ code: 'keys_unreadable' });
  });

  it('imports records as they are, revoked ones included, and leaves ids already present alone', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bastion-keys-'));
    try {
      const file = new KeyStore(path.join(dir, 'keys.json'));
      const kept = (await file.create({ client: 'kept', scopes: ['agent'] })).record;
      const gone = (await file.create({ client: 'gone', scopes: ['files:read'] })).record;
      await file.revoke(gone.id);
      const redis = connect();
      await ready(redis);
      const store = open(redis, redisOptions());
      const records = file.list();
      expect(await Promise.all(records.map((r) => store.add(r)))).toEqual([true, true]);
      expect(await store.add({ ...kept, client: 'impostor' })).toBe(false);
      expect(await store.find(kept.id)).toEqual(kept);
      expect(await store.find(gone.id)).toEqual(records.find((r) => r.id === gone.id));
      expect((await store.find(gone.id))?.revoked).toEqual(expect.any(String));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
