import path from 'node:path';
import { keysFilePath } from '../auth/key-store.js';
import type { BastionConfig } from '../config/config.schema.js';
import { conversationsFilePath } from '../conversations/conversation.store.factory.js';
import { auditFilePath, rotatedAuditFiles } from '../observability/audit-log.js';

import { kindOf } from './backup-files.js';
import { shmOf, walOf } from './backup-manifest.js';

/** Where the state of one Bastion server lives, from the same config the server reads. */
export interface StatePaths {
  dataDir: string;
  store: 'sqlite' | 'redis';
  database: string;
  keys: string;
  audit: string;
}

export function statePaths(config: BastionConfig): StatePaths {
  return {
    dataDir: path.resolve(config.dataDir),
    store: config.conversations.store,
    database: conversationsFilePath(config),
    keys: keysFilePath(config),
    audit: auditFilePath(config),
  };
}

/** The audit log's files that exist: rotated ones oldest first, then the current file. */
export async function liveAuditFiles(audit: string): Promise<string[]> {
  const rotated = await rotatedAuditFiles(audit);
  return (await kindOf(audit)) === 'missing' ? rotated : [...rotated, audit];
}

export interface ExistingState {
  /** The database and its write-ahead log, if present. */
  conversations: string[];
  keys: string[];
  audit: string[];
  /** SQLite's shared-memory index: not state, but stale once the database is replaced. */
  shm: string[];
}

/** The state files present at these paths (anything there counts, even what is not a regular file). */
export async function existingState(paths: StatePaths): Promise<ExistingState> {
  const present = async (files: string[]): Promise<string[]> => {
    const kinds = await Promise.all(files.map(kindOf));
    return files.filter((_, i) => kinds[i] !== 'missing');
  };
  return {
    conversations: await present([paths.database, walOf(paths.database)]),
    keys: await present([paths.keys]),
    audit: await liveAuditFiles(paths.audit),
    shm: await present([shmOf(paths.database)]),
  };
}
