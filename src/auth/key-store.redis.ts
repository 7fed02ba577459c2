/**
 * API keys in Redis, shared by every Bastion instance that points at the same server: a key created or
 * revoked with `bastion keys` on any machine is seen by all of them.
 *
 * Keys (after keyPrefix, default `bastion:`; the `{apikeys}` hash tag keeps both in one Cluster slot):
 * - `{apikeys}`: hash of key id -> record JSON (the same record as the keys file: a digest, never the key).
 * - `{apikeys}:version`: a counter every change increments, in the same script as the change.
 * - channel `apikeys:changed`: every change publishes the new version.
 *
 * Lookups read a local copy of all records, so a request costs no round trip. The copy is refreshed:
 * - at once when a change is published (a lookup after the message waits for the reload);
 * - and, in case a message was lost (the subscriber was reconnecting), by comparing the version counter
 *   with Redis at most every `checkEveryMs`, in the background.
 * A copy that Redis has not confirmed for `maxStaleMs` is not used: the lookup waits for Redis instead.
 * So a revocation reaches every instance within `maxStaleMs` (1 s) at worst, and usually within
 * milliseconds.
 *
 * Redis unreachable: fail closed. Keys keep working only while the copy is within `maxStaleMs` of its last
 * confirmation; after that every lookup is refused with KeyStoreUnavailable (503) until Redis answers.
 * Serving an older copy would let a key revoked during the outage (or a partition) keep working.
 */
import type { Redis } from 'ioredis';
import { BastionError } from '../common/bastion-error.js';
import {
  keyRecord,
  KeyStoreError,
  newKeyRecord,
  type ApiKeyStore,
  type KeyRecord,
  type NewKey,
} from './key-store.js';

export interface RedisKeyStoreOptions {
  keyPrefix?: string;
  /** How often, at most, a lookup checks the version counter with Redis (in the background). */
  checkEveryMs?: number;
  /** How long the local copy is trusted without a confirmation from Redis; past this, lookups wait for it. */
  maxStaleMs?: number;
  /** How long a lookup waits for Redis before it is refused. */
  timeoutMs?: number;
  /** Milliseconds, monotonic or not; injectable so tests can move time. */
  now?: () => number;
}

/** 503: Redis has not confirmed the keys recently enough to trust them. */
export class KeyStoreUnavailable extends BastionError {
  readonly statusCode = 503;
  constructor() {
    super('key_store_unavailable', 'Service unavailable: the API keys cannot be checked right now.');
  }
}

// KEYS: records hash, version. ARGV: id, record JSON, channel. Adds a record unless its id exists.
const ADD_LUA = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('PUBLISH', ARGV[3], redis.call('INCR', KEYS[2]))
return 1
`;

// KEYS: records hash, version. ARGV: id, revocation time, channel. 0: no such key; 1: revoked (or was).
const REVOKE_LUA = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record.revoked then return 1 end
record.revoked = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
redis.call('PUBLISH', ARGV[3], redis.call('INCR', KEYS[2]))
return 1
`;

interface KeyCommands {
  bastionKeyAdd(records: string, version: string, id: string, json: string, channel: string): Promise<number>;
  bastionKeyRevoke(
    records: string,
    version: string,
    id: string,
    revoked: string,
    channel: string,
  ): Promise<number>;
}

export class RedisKeyStore implements ApiKeyStore {
  private readonly recordsKey: string;
  private readonly versionKey: string;
  private readonly channel: string;
  private readonly checkEveryMs: number;
  private readonly maxStaleMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private subscriber: Redis | undefined;

  private copy = new Map<string, KeyRecord>();
  private version: string | null | undefined;
  /** When Redis last confirmed the copy (the time the confirming request was sent). */
  private confirmedAt = Number.NEGATIVE_INFINITY;
  /** Bumped by every published change; a refresh that started before the bump does not clear it. */
  private changes = 0;
  private changed = true;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    options: RedisKeyStoreOptions = {},
  ) {
    const prefix = options.keyPrefix ?? 'bastion:';
    this.recordsKey = `${prefix}{apikeys}`;
    this.versionKey = `${prefix}{apikeys}:version`;
    this.channel = `${prefix}apikeys:changed`;
    this.checkEveryMs = options.checkEveryMs ?? 500;
    this.maxStaleMs = options.maxStaleMs ?? 1_000;
    this.timeoutMs = options.timeoutMs ?? 1_000;
    this.now = options.now ?? Date.now;
    redis.defineCommand('bastionKeyAdd', { numberOfKeys: 2, lua: ADD_LUA });
    redis.defineCommand('bastionKeyRevoke', { numberOfKeys: 2, lua: REVOKE_LUA });
  }

  /**
   * Listens for changes on a connection of its own (a subscribed connection can do nothing else), so the
   * copy is reloaded as soon as any instance changes a key. A server calls this; the CLI needs no copy.
   */
  watch(): this {
    const subscriber = this.redis.duplicate();
    this.subscriber = subscriber;
    subscriber.on('message', () => this.markChanged());
    subscriber.on('ready', () => {
      // Messages sent while the subscriber was away are lost: reload after every (re)connection. SUBSCRIBE
      // is sent on ready because a command sent while disconnected fails; repeating it is harmless.
      this.markChanged();
      subscriber.subscribe(this.channel).catch(() => undefined);
    });
    subscriber.on('error', () => undefined); // the shared connection reports outages
    return this;
  }

  async find(id: string): Promise<KeyRecord | undefined> {
    await this.current();
    return this.copy.get(id);
  }

  /** Straight from Redis: for `bastion keys list`, never stale. */
  async list(): Promise<KeyRecord[]> {
    return [...(await this.load()).records.values()];
  }

  async create(spec: NewKey): Promise<{ record: KeyRecord; key: string }> {
    const created = newKeyRecord(spec);
    await this.add(created.record);
    return created;
  }

  /** Adds a record as it is (revoked or not), unless its id is taken: for moving a keys file into Redis. */
  async add(record: KeyRecord): Promise<boolean> {
    // A record without scopes grants nothing, and Lua's cjson would rewrite its empty list as an object.
    if (record.scopes.length === 0) throw new KeyStoreError('invalid_scopes', 'Give at least one scope.');
    const json = JSON.stringify(keyRecord.parse(record));
    const added = await this.commands.bastionKeyAdd(
      this.recordsKey,
      this.versionKey,
      record.id,
      json,
      this.channel,
    );
    this.markChanged();
    return added === 1;
  }

  async revoke(id: string): Promise<boolean> {
    const found = await this.commands.bastionKeyRevoke(
      this.recordsKey,
      this.versionKey,
      id,
      new Date().toISOString(),
      this.channel,
    );
    this.markChanged();
    return found === 1;
  }

  /** Closes the subscriber; the shared connection belongs to whoever passed it in. */
  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (!subscriber) return;
    await subscriber.quit().catch(() => subscriber.disconnect());
  }

  private get commands(): KeyCommands {
    return this.redis as unknown as KeyCommands;
  }

  private markChanged(): void {
    this.changes++;
    this.changed = true;
  }

  /**
   * Makes the copy fit for a lookup. A copy confirmed within maxStaleMs and not known to be changed is
   * used as it is (refreshed in the background once checkEveryMs has passed); otherwise the lookup waits
   * for Redis, and is refused if Redis does not answer.
   */
  private async current(): Promise<void> {
    const age = this.now() - this.confirmedAt;
    const trusted = !this.changed && age < this.maxStaleMs;
    if (trusted) {
      if (age >= this.checkEveryMs) this.refresh().catch(() => undefined);
      return;
    }
    try {
      await this.refresh();
    } catch {
      throw new KeyStoreUnavailable();
    }
  }

  /** One refresh at a time, shared by every lookup waiting for it, bounded by timeoutMs. */
  private refresh(): Promise<void> {
    this.refreshing ??= withTimeout(this.sync(), this.timeoutMs).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async sync(): Promise<void> {
    const sentAt = this.now();
    const changes = this.changes;
    const version = await this.redis.get(this.versionKey);
    if (version !== this.version || this.changed) {
      const loaded = await this.load();
      this.copy = loaded.records;
      this.version = loaded.version;
    }
    this.confirmedAt = sentAt;
    if (this.changes === changes) this.changed = false;
  }

  /** The version and every record, read together (MULTI), so they belong to each other. */
  private async load(): Promise<{ version: string | null; records: Map<string, KeyRecord> }> {
    const replies = await this.redis.multi().get(this.versionKey).hgetall(this.recordsKey).exec();
    const [versionReply, recordsReply] = replies ?? [];
    if (!versionReply || !recordsReply || versionReply[0] || recordsReply[0]) throw this.unreadable();
    const records = new Map<string, KeyRecord>();
    for (const json of Object.values(recordsReply[1] as Record<string, string>)) {
      const parsed = parseRecord(json);
      if (!parsed) throw this.unreadable();
      records.set(parsed.id, parsed);
    }
    return { version: versionReply[1] as string | null, records };
  }

  private unreadable(): KeyStoreError {
    return new KeyStoreError('keys_unreadable', 'The API keys in Redis cannot be read or are not valid.');
  }
}

function parseRecord(json: string): KeyRecord | undefined {
  try {
    const parsed = keyRecord.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
