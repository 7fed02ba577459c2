/**
 * The SQLite turn lock across processes: two stores opened on one file stand for two workers of
 * `bastion serve --workers`, which share nothing but the file. Leases, renewals, retries and waits run on
 * Jest's fake clock (the lock rows hold Date.now() times, and SQLite is synchronous), so each is checked to
 * the millisecond and none is waited for.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import Database from 'better-sqlite3';
import { ConversationBusy } from './conversation.errors.js';
import { SqliteConversationStore } from './conversation.store.sqlite.js';

const DAY_MS = 86_400_000;

let dir: string;
let file: string;
const open: SqliteConversationStore[] = [];

function store(lockLeaseMs?: number): SqliteConversationStore {
  const opened = SqliteConversationStore.open(file, {
    retentionMs: DAY_MS,
    ...(lockLeaseMs && { lockLeaseMs }),
  });
  open.push(opened);
  return opened;
}

function gate(): { wait: Promise<void>; open: () => void } {
  let release!: () => void;
  const wait = new Promise<void>((resolve) => (release = resolve));
  return { wait, open: release };
}

interface LockRow {
  conversation_id: string;
  token: string;
  expires_at: number;
}

function lockRows(): LockRow[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare<[], LockRow>('SELECT * FROM turn_locks').all();
  } finally {
    db.close();
  }
}

/** Whether a promise has settled yet, without waiting for it. */
function track<T>(promise: Promise<T>): { readonly settled: boolean; promise: Promise<T> } {
  const tracked = { settled: false, promise };
  promise.then(
    () => (tracked.settled = true),
    () => (tracked.settled = true),
  );
  return tracked;
}

beforeEach(() => {
  jest.useFakeTimers();
  dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-sqlite-lock-'));
  file = path.join(dir, 'conversations.db');
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((opened) => opened.close()));
  jest.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

describe('SqliteConversationStore turn lock across processes', () => {
  it('makes a second process wait for the holder, then gives it the turn', async () => {
    const [a, b] = [store(), store()];
    const { id } = await a.create({ owner: 'alice' });
    const held = gate();
    const order: string[] = [];
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const first = a.withTurnLock(id, { waitMs: 5_000 }, async () => {
      entered();
      order.push('a start');
      await held.wait;
      order.push('a end');
    });
    await inside;
    const second = track(
      b.withTurnLock(id, { waitMs: 60_000 }, async () => {
        order.push('b');
      }),
    );
    // Past the default lease and several renewals: b keeps retrying and never gets in.
    await jest.advanceTimersByTimeAsync(45_000);
    expect(order).toEqual(['a start']);
    held.open();
    await first;
    // b's next retry, at most 100 ms later, finds the lock free.
    await jest.advanceTimersByTimeAsync(100);
    expect(second.settled).toBe(true);
    await second.promise;
    expect(order).toEqual(['a start', 'a end', 'b']);
    expect(lockRows()).toEqual([]);
  });

  it('answers ConversationBusy when the holder keeps the turn past the wait', async () => {
    const [a, b] = [store(), store()];
    const { id } = await a.create({ owner: 'alice' });
    const held = gate();
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const first = a.withTurnLock(id, { waitMs: 5_000 }, async () => {
      entered();
      await held.wait;
    });
    await inside;
    let ran = false;
    const waiting = track(
      b.withTurnLock(id, { waitMs: 100 }, async () => {
        ran = true;
      }),
    );
    await jest.advanceTimersByTimeAsync(99);
    expect(waiting.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(waiting.settled).toBe(true);
    await expect(waiting.promise).rejects.toBeInstanceOf(ConversationBusy);
    expect(ran).toBe(false);
    held.open();
    await first;
  });

  it('stops waiting the moment the signal aborts, while another process holds the turn', async () => {
    const [a, b] = [store(), store()];
    const { id } = await a.create({ owner: 'alice' });
    const held = gate();
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const first = a.withTurnLock(id, { waitMs: 5_000 }, async () => {
      entered();
      await held.wait;
    });
    await inside;
    const controller = new AbortController();
    const reason = new Error('client went away');
    let ran = false;
    const waiting = track(
      b.withTurnLock(id, { waitMs: 60_000, signal: controller.signal }, async () => {
        ran = true;
      }),
    );
    // Well into its retries against the other process's lease.
    await jest.advanceTimersByTimeAsync(5_000);
    expect(waiting.settled).toBe(false);
    controller.abort(reason);
    await jest.advanceTimersByTimeAsync(0);
    expect(waiting.settled).toBe(true);
    await expect(waiting.promise).rejects.toBe(reason);
    held.open();
    await first;
    expect(ran).toBe(false);
    expect(lockRows()).toEqual([]);
  });

  it('renews the lease while the holder works, so a long turn is not taken over', async () => {
    const [a, b] = [store(3_000), store(3_000)];
    const { id } = await a.create({ owner: 'alice' });
    const held = gate();
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const first = a.withTurnLock(id, { waitMs: 5_000 }, async () => {
      entered();
      await held.wait;
    });
    await inside;
    // Four leases long: only renewal keeps it.
    const thief = track(b.withTurnLock(id, { waitMs: 12_000 }, async () => undefined));
    await jest.advanceTimersByTimeAsync(12_000);
    expect(thief.settled).toBe(true);
    await expect(thief.promise).rejects.toBeInstanceOf(ConversationBusy);
    expect(lockRows()).toEqual([
      { conversation_id: id, token: expect.any(String), expires_at: expect.any(Number) },
    ]);
    // Renewed every third of the lease: never more than a lease ahead, never less than two thirds of one.
    const [row] = lockRows();
    expect(row!.expires_at - Date.now()).toBeGreaterThanOrEqual(2_000);
    expect(row!.expires_at - Date.now()).toBeLessThanOrEqual(3_000);
    held.open();
    await first;
  });

  it('takes over the lock of a process that died holding it, once its lease runs out', async () => {
    const b = store();
    const { id } = await b.create({ owner: 'alice' });
    const db = new Database(file);
    const expiresAt = Date.now() + 200;
    db.prepare('INSERT INTO turn_locks (conversation_id, token, expires_at) VALUES (?, ?, ?)').run(
      id,
      'crashed-holder',
      expiresAt,
    );
    db.close();
    let ranAt = 0;
    const taking = track(
      b.withTurnLock(id, { waitMs: 5_000 }, async () => {
        ranAt = Date.now();
      }),
    );
    await jest.advanceTimersByTimeAsync(199);
    expect(taking.settled).toBe(false);
    // Taken at the first retry after the lease ran out (retries come every 20 to 100 ms).
    await jest.advanceTimersByTimeAsync(100);
    expect(taking.settled).toBe(true);
    await taking.promise;
    expect(ranAt).toBeGreaterThanOrEqual(expiresAt);
    expect(ranAt).toBeLessThanOrEqual(expiresAt + 100);
    expect(lockRows()).toEqual([]);
  });

  it('migrates a file written before the lock table existed, keeping its conversations', async () => {
    const first = store();
    const { id } = await first.create({ owner: 'alice' });
    await first.close();
    // As the previous release left it: schema version 1, no lock table.
    const db = new Database(file);
    db.exec('DROP TABLE turn_locks');
    db.pragma('user_version = 1');
    db.close();
    const reopened = store();
    expect(await reopened.get(id, 'alice')).toMatchObject({ id });
    await expect(reopened.withTurnLock(id, { waitMs: 1_000 }, async () => lockRows().length)).resolves.toBe(
      1,
    );
    await reopened.close();
    const check = new Database(file, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(2);
    check.close();
  });
});
