/**
 * Conversations in Redis, shared by every Bastion process that points at the same server.
 *
 * Keys (after keyPrefix, default `bastion:`):
 * - `conv:{id}`: hash { owner, readOnly, createdAt, updatedAt, expiresAt, turnCount }, times in epoch ms.
 * - `conv:{id}:turns`: list of whole turns as JSON, oldest first; a turn's seq is its position (1-based).
 * - `owner:{owner}:convs`: sorted set of the owner's ids scored by createdAt; equal scores sort by id, so
 *   a reverse range is (createdAt DESC, id DESC), the same order as SQLite.
 * - `convs:expiry`: sorted set of `{id}:{owner}` scored by expiresAt, which purgeExpired walks.
 * - `lock:{id}`: the turn lock, a random token with a lease.
 *
 * Both conversation keys carry PEXPIREAT expiresAt, so Redis drops them itself; every read also compares
 * expiresAt with the injected clock, so an expired conversation is never returned before Redis gets to it.
 * Ids left in the index sets by Redis's own expiry are removed lazily by list and by purgeExpired.
 * Writes are single Lua scripts or MULTI blocks, so each lands whole or not at all. They span a
 * conversation's keys and the index sets, which Redis Cluster would put in different slots: this store
 * targets one Redis server (with replicas).
 *
 * While Redis is unreachable every method rejects with ConversationStoreUnavailable (the connection fails
 * commands fast rather than queueing them); a turn lock left behind expires with its lease.
 */
import { randomUUID } from 'node:crypto';
import { decodeCursor, encodeCursor, wholeTurn } from './conversation-records.js';
import type { Redis } from 'ioredis';
import type { ConversationMeta, NewTurn, Page, Turn } from './conversation.js';
import { BastionError } from '../common/bastion-error.js';
import { ConversationStoreUnavailable } from './conversation.errors.js';
import type { ConversationStore, CreateConversation, TurnLockOptions } from './conversation.store.js';
import { DEFAULT_LEASE_MS, TurnLeases, type LeaseStorage } from './turn-lease.js';

export interface RedisConversationStoreOptions {
  /** How long a conversation lives after its last turn. */
  retentionMs: number;
  /** Milliseconds since the epoch; injectable so tests can move time. */
  now?: () => number;
  keyPrefix?: string;
  /** How long a turn lock outlives a holder that stopped renewing it (a crashed process). */
  lockLeaseMs?: number;
}

// The conversation scripts share KEYS: conv, turns, owner index, expiry index.
// ARGV: owner, now, new expiresAt, turn JSON, expiry member.
const APPEND_LUA = `
local meta = redis.call('HMGET', KEYS[1], 'owner', 'expiresAt')
if meta[1] ~= ARGV[1] or not meta[2] or tonumber(meta[2]) <= tonumber(ARGV[2]) then return 0 end
local seq = redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2], 'expiresAt', ARGV[3], 'turnCount', seq)
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('PEXPIREAT', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[5])
return seq
`;

// ARGV: owner, now, id, expiry member.
const DELETE_LUA = `
local meta = redis.call('HMGET', KEYS[1], 'owner', 'expiresAt')
if meta[1] ~= ARGV[1] or not meta[2] or tonumber(meta[2]) <= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZREM', KEYS[4], ARGV[4])
return 1
`;

// ARGV: now, id, expiry member. Re-checks the score: a turn may have slid the expiry since purge read it.
const PURGE_ONE_LUA = `
local score = redis.call('ZSCORE', KEYS[4], ARGV[3])
if not score or tonumber(score) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[3])
return 1
`;

// KEYS: lock. ARGV: token, lease ms. Only the holder may extend or release its lock.
const RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

// Each script takes its KEYS, then its ARGV (ioredis's defineCommand), and answers an integer.
type Script = (...keysThenArgs: (string | number)[]) => Promise<number>;
type ScriptName =
  | 'bastionConvAppend'
  | 'bastionConvDelete'
  | 'bastionConvPurgeOne'
  | 'bastionLockRenew'
  | 'bastionLockRelease';
type Scripts = Record<ScriptName, Script>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PURGE_BATCH = 200;

/**
 * close() stops this store's timers but does not quit the connection: the caller created it and may
 * share it with other Redis users, so the caller quits it.
 */
export class RedisConversationStore implements ConversationStore {
  readonly kind = 'redis' as const;
  private readonly leases: TurnLeases;
  private readonly now: () => number;
  private readonly retentionMs: number;
  private readonly prefix: string;
  private readonly scripts: Scripts;

  constructor(
    private readonly redis: Redis,
    options: RedisConversationStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.retentionMs = options.retentionMs;
    this.prefix = options.keyPrefix ?? 'bastion:';
    redis.defineCommand('bastionConvAppend', { numberOfKeys: 4, lua: APPEND_LUA });
    redis.defineCommand('bastionConvDelete', { numberOfKeys: 4, lua: DELETE_LUA });
    redis.defineCommand('bastionConvPurgeOne', { numberOfKeys: 4, lua: PURGE_ONE_LUA });
    redis.defineCommand('bastionLockRenew', { numberOfKeys: 1, lua: RENEW_LUA });
    redis.defineCommand('bastionLockRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    this.scripts = redis as unknown as Scripts;
    this.leases = new TurnLeases(this.leaseStorage(), options.lockLeaseMs ?? DEFAULT_LEASE_MS);
  }

  async create(input: CreateConversation): Promise<ConversationMeta> {
    const id = randomUUID();
    const now = this.now();
    const expiresAt = now + this.retentionMs;
    const fields = { owner: input.owner, readOnly: input.readOnly ? 1 : 0, turnCount: 0 };
    await reach(
      exec(
        this.redis
          .multi()
          .hset(this.conv(id), { ...fields, createdAt: now, updatedAt: now, expiresAt })
          .pexpireat(this.conv(id), expiresAt)
          .zadd(this.ownerIndex(input.owner), now, id)
          .zadd(this.expiryIndex(), expiresAt, `${id}:${input.owner}`),
      ),
    );
    return toMeta(id, { ...fields, createdAt: now, updatedAt: now, expiresAt });
  }

  async get(id: string, owner: string): Promise<ConversationMeta | undefined> {
    if (!UUID.test(id)) return undefined;
    const hash = await reach(this.redis.hgetall(this.conv(id)));
    return this.isLive(hash, owner) ? toMeta(id, hash) : undefined;
  }

  async list(owner: string, page: { limit: number; cursor?: string }): Promise<Page<ConversationMeta>> {
    if (!Number.isInteger(page.limit) || page.limit < 1) {
      throw new RangeError('A page limit is a positive integer.');
    }
    return reach(this.page(owner, page));
  }

  private async page(
    owner: string,
    page: { limit: number; cursor?: string },
  ): Promise<Page<ConversationMeta>> {
    const index = this.ownerIndex(owner);
    let position = page.cursor === undefined ? undefined : decodeCursor(page.cursor);
    const items: ConversationMeta[] = [];
    const dead: string[] = [];
    // Keyset walk: skip ids Redis has dropped or the clock has expired until a page and one more are found.
    while (items.length <= page.limit) {
      const wanted = page.limit + 1 - items.length;
      const entries = await this.after(index, position, wanted);
      if (entries.length === 0) break;
      const pipeline = this.redis.pipeline();
      for (const entry of entries) pipeline.hgetall(this.conv(entry.id));
      const hashes = (await exec(pipeline)) as Record<string, string>[];
      entries.forEach((entry, i) => {
        const hash = hashes[i] ?? {};
        if (this.isLive(hash, owner)) items.push(toMeta(entry.id, hash));
        else if (hash.owner === undefined) dead.push(entry.id);
      });
      position = entries[entries.length - 1];
      if (entries.length < wanted) break;
    }
    if (dead.length > 0) await this.redis.zrem(index, ...dead);
    const shown = items.slice(0, page.limit);
    const last = shown[shown.length - 1];
    return items.length > page.limit && last
      ? { items: shown, nextCursor: encodeCursor(Date.parse(last.createdAt), last.id) }
      : { items: shown };
  }

  async turns(id: string, owner: string): Promise<Turn[] | undefined> {
    if (!UUID.test(id)) return undefined;
    // MULTI, so the metadata and the turns are read at one moment.
    const [hash, raw] = (await reach(
      exec(this.redis.multi().hgetall(this.conv(id)).lrange(this.turnsKey(id), 0, -1)),
    )) as [Record<string, string>, string[]];
    if (!this.isLive(hash, owner)) return undefined;
    return raw.map((json, i) => ({ seq: i + 1, ...(JSON.parse(json) as NewTurn) }));
  }

  async appendTurn(id: string, owner: string, turn: NewTurn): Promise<Turn | undefined> {
    if (!UUID.test(id)) return undefined;
    const whole = wholeTurn(turn);
    const now = this.now();
    const expiresAt = now + this.retentionMs;
    const json = JSON.stringify(whole);
    // One script: when Redis dies mid-call the turn is stored whole or not at all, never in part.
    const seq = await reach(
      this.scripts.bastionConvAppend(
        ...this.keysOf(id, owner),
        owner,
        now,
        expiresAt,
        json,
        `${id}:${owner}`,
      ),
    );
    return seq > 0 ? { seq, ...whole } : undefined;
  }

  async delete(id: string, owner: string): Promise<boolean> {
    if (!UUID.test(id)) return false;
    const member = `${id}:${owner}`;
    return (
      (await reach(
        this.scripts.bastionConvDelete(...this.keysOf(id, owner), owner, this.now(), id, member),
      )) === 1
    );
  }

  withTurnLock<T>(id: string, options: TurnLockOptions, fn: () => Promise<T>): Promise<T> {
    return this.leases.run(id, options, fn);
  }

  /** The lease as a key set NX with an expiry; only its holder's token may extend or delete it. */
  private leaseStorage(): LeaseStorage {
    const lock = (id: string) => this.key(`lock:${id}`);
    return {
      take: async (id, token, leaseMs) =>
        (await reach(this.redis.set(lock(id), token, 'PX', leaseMs, 'NX'))) === 'OK',
      renew: async (id, token, leaseMs) => {
        await this.scripts.bastionLockRenew(lock(id), token, leaseMs);
      },
      release: async (id, token) => {
        await this.scripts.bastionLockRelease(lock(id), token);
      },
    };
  }

  purgeExpired(now?: Date): Promise<number> {
    return reach(this.purge(now?.getTime() ?? this.now()));
  }

  private async purge(cutoff: number): Promise<number> {
    let purged = 0;
    // Every member read is either purged or has slid past the cutoff, so each batch makes progress.
    for (;;) {
      const index = this.expiryIndex();
      const members = await this.redis.zrangebyscore(index, '-inf', cutoff, 'LIMIT', 0, PURGE_BATCH);
      if (members.length === 0) return purged;
      const results = await Promise.all(
        members.map((member) => {
          // `{id}:{owner}`: a UUID has no colon, so the owner is everything after the first one.
          const colon = member.indexOf(':');
          const [id, owner] = [member.slice(0, colon), member.slice(colon + 1)];
          return this.scripts.bastionConvPurgeOne(...this.keysOf(id, owner), cutoff, id, member);
        }),
      );
      purged += results.reduce((sum, n) => sum + n, 0);
    }
  }

  async ping(): Promise<void> {
    await reach(this.redis.ping());
  }

  async close(): Promise<void> {
    this.leases.close();
  }

  /** Up to count index entries strictly after position in (createdAt DESC, id DESC) order. */
  private async after(
    index: string,
    position: { createdAt: number; id: string } | undefined,
    count: number,
  ): Promise<{ createdAt: number; id: string }[]> {
    const entries: { createdAt: number; id: string }[] = [];
    if (position) {
      // Ids created in the same millisecond as the position: few, so read them all and keep the smaller.
      const ties = await this.redis.zrevrangebyscore(index, position.createdAt, position.createdAt);
      for (const id of ties) if (id < position.id) entries.push({ createdAt: position.createdAt, id });
    }
    if (entries.length < count) {
      const max = position ? `(${position.createdAt}` : '+inf';
      const flat = await this.redis.zrevrangebyscore(index, max, '-inf', 'WITHSCORES', 'LIMIT', 0, count);
      for (let i = 0; i + 1 < flat.length; i += 2) {
        entries.push({ id: flat[i] as string, createdAt: Number(flat[i + 1]) });
      }
    }
    return entries.slice(0, count);
  }

  private isLive(hash: Record<string, string>, owner: string): boolean {
    return hash.owner === owner && Number(hash.expiresAt) > this.now();
  }

  private keysOf(id: string, owner: string): [string, string, string, string] {
    return [this.conv(id), this.turnsKey(id), this.ownerIndex(owner), this.expiryIndex()];
  }
  private key(suffix: string): string {
    return `${this.prefix}${suffix}`;
  }
  private conv(id: string): string {
    return this.key(`conv:${id}`);
  }
  private turnsKey(id: string): string {
    return this.key(`conv:${id}:turns`);
  }
  private ownerIndex(owner: string): string {
    // Encoded, so no owner name can spell another key.
    return this.key(`owner:${encodeURIComponent(owner)}:convs`);
  }
  private expiryIndex(): string {
    return this.key('convs:expiry');
  }
}

/** Awaits Redis work: a Redis failure becomes ConversationStoreUnavailable; Bastion's own errors pass. */
async function reach<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof BastionError) throw error;
    throw new ConversationStoreUnavailable({ cause: error });
  }
}

/** Runs a MULTI or pipeline and returns its replies, throwing the first command error. */
async function exec(batch: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<unknown[]> {
  const replies = await batch.exec();
  if (!replies) throw new Error('Redis discarded the transaction.');
  return replies.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}

function toMeta(id: string, hash: Record<string, string | number>): ConversationMeta {
  const iso = (ms: string | number | undefined) => new Date(Number(ms)).toISOString();
  return {
    id,
    owner: String(hash.owner),
    readOnly: Number(hash.readOnly) === 1,
    createdAt: iso(hash.createdAt),
    updatedAt: iso(hash.updatedAt),
    expiresAt: iso(hash.expiresAt),
    turnCount: Number(hash.turnCount),
  };
}
