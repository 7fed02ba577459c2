import path from 'node:path';
import Database from 'better-sqlite3';
import { BastionError } from '../common/bastion-error.js';

export class DataDirLocked extends BastionError {}

export const LOCK_FILE = 'bastion.lock';

/** The open lock files: referenced here so that none is collected (and so closed) while the process lives. */
const held = new Set<Database.Database>();

/**
 * Holds `<dataDir>/bastion.lock` for as long as this process serves, so a second `bastion serve` on the
 * same data directory stops at once instead of interleaving its audit chain and its state with this one's.
 * The lock is SQLite's exclusive lock on the file (a POSIX record lock): the kernel drops it when the
 * process ends, however it ends, so a crash never leaves a stale lock behind. The workers of
 * `serve --workers N` run under their primary's lock.
 */
export function lockDataDir(dataDir: string): { release(): void } {
  const file = path.join(path.resolve(dataDir), LOCK_FILE);
  const db = new Database(file, { timeout: 0 });
  try {
    // No journal beside the lock file: it holds nothing worth a rollback.
    db.pragma('journal_mode = MEMORY');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, since TEXT NOT NULL)');
    db.exec('DELETE FROM holder');
    db.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, new Date().toISOString());
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      throw new DataDirLocked(
        'data_dir_locked',
        `Another Bastion server is using the data directory ${path.resolve(dataDir)} (it holds ${LOCK_FILE}). ` +
          'Stop it first, give this server its own --data-dir, or run one server with --workers N.',
      );
    }
    throw error;
  }
  held.add(db);
  return {
    release: () => {
      held.delete(db);
      db.close();
    },
  };
}
