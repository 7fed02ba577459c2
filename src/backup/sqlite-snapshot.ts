import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BackupError } from './backup.errors.js';

/** How long a backup waits for a server's write transaction to finish (the server's own busy timeout). */
const BUSY_TIMEOUT_MS = 5_000;

export interface DatabaseContents {
  conversations: number;
  turns: number;
  schemaVersion: number;
}

/** sqlite3_backup_step copies at most this many pages per step: here, all of them in one step. */
const ALL_PAGES = 0x7fffffff;

/**
 * Copies a live conversations database with SQLite's online backup API, including what the write-ahead
 * log holds. All pages are copied in one step, inside one read transaction: the copy is one consistent
 * state, never a torn file, and the server goes on writing meanwhile (in WAL mode a reader does not block
 * the writer). In small steps, every write by the server would make SQLite start the copy over, and a busy
 * server could keep it from ever finishing. The copy is then checked.
 */
export async function snapshotDatabase(source: string, dest: string): Promise<DatabaseContents> {
  // Read-write, not read-only: a read-only connection leaves -wal and -shm files behind when the server is
  // stopped. This connection only reads; the last one to close checkpoints, as the server itself would.
  const db = new Database(source, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  try {
    // Security: the copy exists 0600 before SQLite writes a page into it.
    closeSync(openSync(dest, 'wx', 0o600));
    await db.backup(dest, { progress: () => ALL_PAGES });
  } finally {
    db.close();
  }
  return inspectDatabase(dest, 'backup_database_corrupt');
}

/** Runs SQLite's integrity check on a file nobody else uses, and counts what it holds. */
export function inspectDatabase(file: string, code: string): DatabaseContents {
  try {
    return inspect(file);
  } catch (error) {
    throw BackupError.integrity(
      code,
      `${path.basename(file)} is not a sound SQLite database (${(error as Error).message}).`,
    );
  }
}

function inspect(file: string): DatabaseContents {
  const db = new Database(file, { fileMustExist: true, timeout: 0 });
  try {
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new Error(String(check));
    const schemaVersion = db.pragma('user_version', { simple: true }) as number;
    const tables = new Set(
      db
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all()
        .map((row) => row.name),
    );
    const rows = (table: 'conversations' | 'turns'): number =>
      tables.has(table)
        ? (db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table}`).get()?.n ?? 0)
        : 0;
    return { conversations: rows('conversations'), turns: rows('turns'), schemaVersion };
  } finally {
    db.close();
  }
}

/**
 * Whether another process has the database open. A running Bastion server keeps its connection open
 * from start to shutdown, and in WAL mode every open connection holds a shared lock on the database, so
 * asking for an exclusive lock without waiting fails exactly while some process has it open. Not a
 * promise about the future: a server started a moment later is not seen.
 */
export function databaseInUse(file: string): boolean {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true, timeout: 0 });
  } catch (error) {
    return isBusy(error);
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
    return false;
  } catch (error) {
    // Anything else (not a database at all, say) means no server can be using it either.
    return isBusy(error);
  } finally {
    db.close();
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}
