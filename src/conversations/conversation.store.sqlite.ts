import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { decodeCursor, encodeCursor, wholeTurn } from './conversation-records.js';
import type { ConversationMeta, NewTurn, Page, Turn } from './conversation.js';
import type { ConversationStore, CreateConversation, TurnLockOptions } from './conversation.store.js';
import { DEFAULT_LEASE_MS, TurnLeases, type LeaseStorage } from './turn-lease.js';

export interface SqliteConversationStoreOptions {
  /** How long a conversation lives after its last turn. */
  retentionMs: number;
  /** Milliseconds since the epoch; injectable so tests can move time. */
  now?: () => number;
  /** How long a turn lock outlives a holder that stopped renewing it (a crashed process). */
  lockLeaseMs?: number;
}

/**
 * Schema versions, applied in order; PRAGMA user_version records how many have run. Append only: a
 * shipped migration is never edited, since files in the field have already run it.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE conversations (
     id TEXT PRIMARY KEY,
     owner TEXT NOT NULL,
     read_only INTEGER NOT NULL CHECK (read_only IN (0, 1)),
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     turn_count INTEGER NOT NULL DEFAULT 0
   ) STRICT;
   CREATE TABLE turns (
     conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
     seq INTEGER NOT NULL,
     prompt TEXT NOT NULL,
     answer TEXT NOT NULL,
     steps TEXT NOT NULL,
     usage TEXT NOT NULL,
     provider TEXT NOT NULL,
     model TEXT NOT NULL,
     at INTEGER NOT NULL,
     PRIMARY KEY (conversation_id, seq)
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX conversations_by_owner ON conversations (owner, created_at, id);
   CREATE INDEX conversations_by_expiry ON conversations (expires_at);`,
  // The turn lock across processes sharing the file (`bastion serve --workers`): a lease per conversation.
  `CREATE TABLE turn_locks (
     conversation_id TEXT PRIMARY KEY,
     token TEXT NOT NULL,
     expires_at INTEGER NOT NULL
   ) STRICT, WITHOUT ROWID;`,
];

const BUSY_TIMEOUT_MS = 5_000;

interface ConversationRow {
  id: string;
  owner: string;
  read_only: number;
  created_at: number;
  updated_at: number;
  expires_at: number;
  turn_count: number;
}

interface TurnRow {
  seq: number;
  prompt: string;
  answer: string;
  steps: string;
  usage: string;
  provider: string;
  model: string;
  at: number;
}

/**
 * Conversations in one SQLite file on this machine, shared by the processes of `bastion serve --workers`.
 * WAL lets reads run beside the one writer; synchronous=FULL makes every acknowledged turn survive a power
 * cut, and costs little because a conversation writes once per turn, seconds apart.
 *
 * Turn leases go through a second connection with synchronous=NORMAL: they need no durability (a power cut
 * ends every process that held one), and an fsync per lease taken and released would triple a turn's
 * writes to disk. The WAL is one file, so the next FULL commit makes them durable anyway.
 */
export class SqliteConversationStore implements ConversationStore {
  readonly kind = 'sqlite' as const;
  private readonly leases: TurnLeases;
  private readonly now: () => number;
  private readonly retentionMs: number;
  private readonly sql: Statements;

  private readonly leaseSql: LeaseStatements;

  private constructor(
    private readonly db: Database.Database,
    private readonly leaseDb: Database.Database,
    options: SqliteConversationStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.retentionMs = options.retentionMs;
    this.sql = prepareStatements(db);
    this.leaseSql = prepareLeaseStatements(leaseDb);
    this.leases = new TurnLeases(this.leaseStorage(), options.lockLeaseMs ?? DEFAULT_LEASE_MS);
  }

  /** Opens (creating if needed) the file and brings its schema up to date. */
  static open(file: string, options: SqliteConversationStoreOptions): SqliteConversationStore {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // Security: create the file 0600 before SQLite does; its -wal and -shm files copy the file's mode.
    closeSync(openSync(file, 'a', 0o600));
    const db = new Database(file);
    let leaseDb: Database.Database | undefined;
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      // Erasure means gone: deleted rows are overwritten, not just unlinked from the b-tree.
      db.pragma('secure_delete = ON');
      // Sorts and temporary tables stay in memory: a container's root filesystem is read-only.
      db.pragma('temp_store = MEMORY');
      migrate(db, file);
      leaseDb = new Database(file);
      leaseDb.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      leaseDb.pragma('synchronous = NORMAL');
      return new SqliteConversationStore(db, leaseDb, options);
    } catch (error) {
      leaseDb?.close();
      db.close();
      throw error;
    }
  }

  async create(input: CreateConversation): Promise<ConversationMeta> {
    const now = this.now();
    const row: ConversationRow = {
      id: randomUUID(),
      owner: input.owner,
      read_only: input.readOnly ? 1 : 0,
      created_at: now,
      updated_at: now,
      expires_at: now + this.retentionMs,
      turn_count: 0,
    };
    this.sql.insert.run({
      id: row.id,
      owner: row.owner,
      readOnly: row.read_only,
      now,
      expiresAt: row.expires_at,
    });
    return toMeta(row);
  }

  async get(id: string, owner: string): Promise<ConversationMeta | undefined> {
    const row = this.sql.get.get({ id, owner, now: this.now() });
    return row && toMeta(row);
  }

  async list(owner: string, page: { limit: number; cursor?: string }): Promise<Page<ConversationMeta>> {
    assertLimit(page.limit);
    const now = this.now();
    // One extra row tells whether another page follows.
    const limit = page.limit + 1;
    const rows =
      page.cursor === undefined
        ? this.sql.firstPage.all({ owner, now, limit })
        : this.sql.nextPage.all({ owner, now, limit, ...decodeCursor(page.cursor) });
    const items = rows.slice(0, page.limit).map(toMeta);
    const last = rows[page.limit - 1];
    return rows.length > page.limit && last
      ? { items, nextCursor: encodeCursor(last.created_at, last.id) }
      : { items };
  }

  async turns(id: string, owner: string): Promise<Turn[] | undefined> {
    // One read transaction, so the metadata check and the turns see the same snapshot.
    return this.db.transaction(() => {
      if (!this.sql.get.get({ id, owner, now: this.now() })) return undefined;
      return this.sql.turns.all({ id }).map(toTurn);
    })();
  }

  async appendTurn(id: string, owner: string, turn: NewTurn): Promise<Turn | undefined> {
    const at = toMs(turn.at);
    // IMMEDIATE takes the write lock before reading turn_count, so no other writer can number a turn twice.
    return this.db
      .transaction((): Turn | undefined => {
        const now = this.now();
        const row = this.sql.get.get({ id, owner, now });
        if (!row) return undefined;
        const seq = row.turn_count + 1;
        const whole = wholeTurn(turn);
        this.sql.insertTurn.run({
          ...whole,
          id,
          seq,
          at,
          steps: JSON.stringify(whole.steps),
          usage: JSON.stringify(whole.usage),
        });
        this.sql.bump.run({ id, seq, now, expiresAt: now + this.retentionMs });
        return { ...whole, seq, at: new Date(at).toISOString() };
      })
      .immediate();
  }

  async delete(id: string, owner: string): Promise<boolean> {
    // The turns go with it through ON DELETE CASCADE, in the same statement.
    const deleted = this.sql.delete.run({ id, owner, now: this.now() }).changes > 0;
    if (deleted) this.forgetOldPages();
    return deleted;
  }

  /** The WAL still holds the pages as they were before a delete: copied back and truncated, they are gone. */
  private forgetOldPages(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  withTurnLock<T>(id: string, options: TurnLockOptions, fn: () => Promise<T>): Promise<T> {
    return this.leases.run(id, options, fn);
  }

  /** The lease as a row of turn_locks. Lease times use the real clock: the injected one moves retention. */
  private leaseStorage(): LeaseStorage {
    return {
      take: async (id, token, leaseMs) => {
        const now = Date.now();
        return this.leaseSql.lock.run({ id, token, now, expiresAt: now + leaseMs }).changes > 0;
      },
      renew: async (id, token, leaseMs) => {
        this.leaseSql.renewLock.run({ id, token, expiresAt: Date.now() + leaseMs });
      },
      release: async (id, token) => {
        if (this.leaseDb.open) this.leaseSql.releaseLock.run({ id, token });
      },
    };
  }

  async purgeExpired(now?: Date): Promise<number> {
    const purged = this.sql.purge.run({ now: now?.getTime() ?? this.now() }).changes;
    if (purged > 0) this.forgetOldPages();
    return purged;
  }

  async ping(): Promise<void> {
    this.sql.ping.get();
  }

  async close(): Promise<void> {
    this.leases.close();
    if (this.leaseDb.open) this.leaseDb.close();
    if (this.db.open) this.db.close();
  }
}

function prepareStatements(db: Database.Database) {
  const live = 'expires_at > @now';
  return {
    insert: db.prepare(
      `INSERT INTO conversations (id, owner, read_only, created_at, updated_at, expires_at, turn_count)
       VALUES (@id, @owner, @readOnly, @now, @now, @expiresAt, 0)`,
    ),
    get: db.prepare<{ id: string; owner: string; now: number }, ConversationRow>(
      `SELECT * FROM conversations WHERE id = @id AND owner = @owner AND ${live}`,
    ),
    firstPage: db.prepare<{ owner: string; now: number; limit: number }, ConversationRow>(
      `SELECT * FROM conversations WHERE owner = @owner AND ${live}
       ORDER BY created_at DESC, id DESC LIMIT @limit`,
    ),
    nextPage: db.prepare<
      { owner: string; now: number; limit: number; createdAt: number; id: string },
      ConversationRow
    >(
      `SELECT * FROM conversations WHERE owner = @owner AND ${live}
         AND (created_at < @createdAt OR (created_at = @createdAt AND id < @id))
       ORDER BY created_at DESC, id DESC LIMIT @limit`,
    ),
    turns: db.prepare<{ id: string }, TurnRow>(
      `SELECT seq, prompt, answer, steps, usage, provider, model, at FROM turns
       WHERE conversation_id = @id ORDER BY seq`,
    ),
    insertTurn: db.prepare(
      `INSERT INTO turns (conversation_id, seq, prompt, answer, steps, usage, provider, model, at)
       VALUES (@id, @seq, @prompt, @answer, @steps, @usage, @provider, @model, @at)`,
    ),
    bump: db.prepare(
      `UPDATE conversations SET turn_count = @seq, updated_at = @now, expires_at = @expiresAt
       WHERE id = @id`,
    ),
    delete: db.prepare(`DELETE FROM conversations WHERE id = @id AND owner = @owner AND ${live}`),
    purge: db.prepare('DELETE FROM conversations WHERE expires_at <= @now'),
    ping: db.prepare('SELECT 1'),
  };
}

function prepareLeaseStatements(db: Database.Database) {
  return {
    // Takes a free lock, or one whose holder's lease ran out; `changes` tells whether it was taken.
    lock: db.prepare(
      `INSERT INTO turn_locks (conversation_id, token, expires_at) VALUES (@id, @token, @expiresAt)
       ON CONFLICT (conversation_id) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
       WHERE turn_locks.expires_at <= @now`,
    ),
    renewLock: db.prepare(
      'UPDATE turn_locks SET expires_at = @expiresAt WHERE conversation_id = @id AND token = @token',
    ),
    releaseLock: db.prepare('DELETE FROM turn_locks WHERE conversation_id = @id AND token = @token'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;
type LeaseStatements = ReturnType<typeof prepareLeaseStatements>;

function migrate(db: Database.Database, file: string): void {
  const version = () => db.pragma('user_version', { simple: true }) as number;
  if (version() > MIGRATIONS.length) {
    throw new Error(
      `${file} has conversation schema version ${version()}, newer than this Bastion knows ` +
        `(${MIGRATIONS.length}); it was written by a newer release. Upgrade Bastion or use another file.`,
    );
  }
  MIGRATIONS.forEach((sql, index) => {
    // Re-read inside the write transaction: another process may have migrated the file meanwhile.
    db.transaction(() => {
      if (version() !== index) return;
      db.exec(sql);
      db.pragma(`user_version = ${index + 1}`);
    }).immediate();
  });
}

function toMeta(row: ConversationRow): ConversationMeta {
  return {
    id: row.id,
    owner: row.owner,
    readOnly: row.read_only === 1,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
    turnCount: row.turn_count,
  };
}

function toTurn(row: TurnRow): Turn {
  return {
    seq: row.seq,
    prompt: row.prompt,
    answer: row.answer,
    steps: JSON.parse(row.steps) as Turn['steps'],
    usage: JSON.parse(row.usage) as Turn['usage'],
    provider: row.provider,
    model: row.model,
    at: new Date(row.at).toISOString(),
  };
}

function toMs(iso: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new TypeError('A turn\'s "at" must be an ISO 8601 date.');
  return ms;
}

function assertLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('A page limit is a positive integer.');
}
