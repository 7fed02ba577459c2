/**
 * The SQLite turn lock across processes: two stores opened on one file stand for two workers of
 * `bastion serve --workers`, which share nothing but the file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
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

function lockRows(): { conversation_id: string; expires_at: number }[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare<[], { conversation_id: string; expires_at: number }>('SELECT * FROM turn_locks').all();
  } finally {
    db.close();
  }
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-sqlite-lock-'));
  file = path.join(dir, 'conversations.db');
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((opened) => opened.close()));
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
    const second = b.withTurnLock(id, { waitMs: 5_000 }, async () => {
      order.push('b');
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(order).toEqual(['a start']);
    held.open();
    await Promise.all([first, second]);
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
    await expect(
      b.withTurnLock(id, { waitMs: 100 }, async () => {
        ran = true;
      }),
    ).rejects.toBeInstanceOf(ConversationBusy);
    expect(ran).toBe(false);
    held.open();
    await first;
  });

  it('renews the lease while the holder works, so a long turn is not taken over', async () => {
    const [a, b] = [store(90), store(90)];
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
    await expect(b.withTurnLock(id, { waitMs: 360 }, async () => undefined)).rejects.toBeInstanceOf(
      ConversationBusy,
    );
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
    await b.withTurnLock(id, { waitMs: 5_000 }, async () => {
      ranAt = Date.now();
    });
    expect(ranAt).toBeGreaterThanOrEqual(expiresAt);
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
