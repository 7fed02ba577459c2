import { chmod, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { KeyStore } from '../auth/key-store.js';
import type { BastionConfig } from '../config/config.schema.js';
import { VERSION } from '../mcp/server-info.js';
import { verifyAuditLogs, type AuditVerdict } from '../observability/audit-record.js';
import { copyNew, digestFile, kindOf, syncDir, writeNew, type FileDigest } from './backup-files.js';
import {
  AUDIT_CURRENT_PATH,
  auditBackupPath,
  BACKUP_FORMAT,
  BACKUP_FORMAT_VERSION,
  DATABASE_PATH,
  KEYS_PATH,
  MANIFEST_FILE,
  manifestText,
  type BackupManifest,
  type ManifestFile,
} from './backup-manifest.js';
import { BackupError } from './backup.errors.js';
import { snapshotDatabase, type DatabaseContents } from './sqlite-snapshot.js';
import { existingState, liveAuditFiles, statePaths, type StatePaths } from './state-paths.js';

/** Times the audit log is copied again when it was rotated during the copy. */
const AUDIT_ATTEMPTS = 5;

export interface BackupResult {
  /** The data directory backed up. */
  dataDir: string;
  /** The backup directory. */
  dir: string;
  manifest: BackupManifest;
  /** SHA-256 of manifest.json: kept elsewhere, it detects a backup rewritten together with its manifest. */
  manifestSha256: string;
  /** What the backup leaves out, and why. */
  notes: string[];
}

/**
 * Backs up the state of a server that may be running: the conversations database through SQLite's online
 * backup, the keys file (replaced atomically by its writers, so any copy is whole), and the audit log's
 * files (append-only: whole lines only, then the copy's chain is verified). Each file is consistent on its
 * own; the audit copy, taken last, may hold a few records newer than the database copy.
 */
export async function createBackup(
  config: BastionConfig,
  out: string,
  now: () => Date = () => new Date(),
): Promise<BackupResult> {
  const paths = statePaths(config);
  const createdAt = now().toISOString();
  const state = await existingState(paths);
  const withDatabase = paths.store === 'sqlite' && state.conversations.includes(paths.database);
  if (!withDatabase && state.keys.length === 0 && state.audit.length === 0)
    throw BackupError.refused(
      'backup_no_state',
      `No Bastion state in ${paths.dataDir}: nothing to back up. Check --data-dir (BASTION_DATA_DIR) and --config.`,
    );

  const dir = path.resolve(out);
  const created = await prepareOut(dir);
  try {
    const files: ManifestFile[] = [];
    const problems: string[] = [];
    const database = withDatabase ? await backUpDatabase(paths.database, dir, files) : undefined;
    const keys = state.keys.length > 0 ? await backUpKeys(paths.keys, dir, files, problems) : undefined;
    const audit = state.audit.length > 0 ? await backUpAudit(paths.audit, dir, files, problems) : undefined;
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      formatVersion: BACKUP_FORMAT_VERSION,
      bastionVersion: VERSION,
      createdAt,
      conversations: { store: paths.store, included: database !== undefined, ...database },
      keys: { included: keys !== undefined, ...(keys !== undefined && { count: keys }) },
      audit: {
        included: audit !== undefined,
        ...(audit?.ok && { records: audit.records, lastHash: audit.lastHash }),
        ...(audit && { chainIntact: audit.ok }),
      },
      problems,
      files,
    };
    // Written last and renamed into place: a backup directory without a manifest is incomplete.
    const text = manifestText(manifest);
    await writeNew(path.join(dir, `.${MANIFEST_FILE}.tmp`), text);
    await rename(path.join(dir, `.${MANIFEST_FILE}.tmp`), path.join(dir, MANIFEST_FILE));
    await syncDir(dir);
    const { sha256 } = await digestFile(path.join(dir, MANIFEST_FILE));
    return {
      dataDir: paths.dataDir,
      dir,
      manifest,
      manifestSha256: sha256,
      notes: notesOn(paths, withDatabase, state),
    };
  } catch (error) {
    await discard(dir, created);
    throw error;
  }
}

/** A new directory, or an existing empty one, made 0700. Returns whether it was created. */
async function prepareOut(dir: string): Promise<boolean> {
  const kind = await kindOf(dir);
  if (kind === 'missing') {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return true;
  }
  if (kind !== 'directory')
    throw BackupError.refused('backup_out_not_directory', `--out ${dir} exists and is not a directory.`);
  if ((await readdir(dir)).length > 0)
    throw BackupError.refused(
      'backup_out_not_empty',
      `--out ${dir} is not empty: give a new or empty directory, so that no backup mixes with another.`,
    );
  await chmod(dir, 0o700);
  return false;
}

/** Removes what a failed backup wrote: the directory if it made it, else everything in it (it was empty). */
async function discard(dir: string, created: boolean): Promise<void> {
  if (created) return rm(dir, { recursive: true, force: true });
  const entries = await readdir(dir).catch(() => []);
  await Promise.all(entries.map((name) => rm(path.join(dir, name), { recursive: true, force: true })));
}

async function backUpDatabase(source: string, dir: string, files: ManifestFile[]): Promise<DatabaseContents> {
  const dest = path.join(dir, DATABASE_PATH);
  const contents = await snapshotDatabase(source, dest);
  files.push(entry(DATABASE_PATH, 'conversations', await digestFile(dest)));
  return contents;
}

/** The keys file, and how many key records it holds (revoked ones included). */
async function backUpKeys(
  source: string,
  dir: string,
  files: ManifestFile[],
  problems: string[],
): Promise<number | undefined> {
  const dest = path.join(dir, KEYS_PATH);
  files.push(entry(KEYS_PATH, 'keys', await copyNew(source, dest, { followLinks: true })));
  try {
    return new KeyStore(dest).list().length;
  } catch {
    problems.push(`${source} is not a valid keys file (the server cannot read it either); copied as it is.`);
    return undefined;
  }
}

/**
 * The audit log's files, rotated ones first. A rotation during the copy shows as a chain that breaks
 * between the copied files; the copy is then taken again. A chain still broken is the live log's own.
 */
async function backUpAudit(
  audit: string,
  dir: string,
  files: ManifestFile[],
  problems: string[],
): Promise<AuditVerdict> {
  await mkdir(path.join(dir, path.dirname(AUDIT_CURRENT_PATH)), { mode: 0o700 });
  for (let attempt = 1; ; attempt += 1) {
    const live = await liveAuditFiles(audit);
    const copies: { path: string; dest: string; digest: FileDigest }[] = [];
    const removeCopies = () => Promise.all(copies.map((copy) => rm(copy.dest, { force: true })));
    try {
      for (const file of live) {
        const backupPath = auditBackupPath(audit, file);
        if (!backupPath) continue;
        const dest = path.join(dir, backupPath);
        const digest = await copyNew(file, dest, {
          completeLines: backupPath === AUDIT_CURRENT_PATH,
          followLinks: true,
        });
        copies.push({ path: backupPath, dest, digest });
      }
    } catch (error) {
      await removeCopies();
      // A rotated file pruned, or the current file renamed, between the listing and the copy.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && attempt < AUDIT_ATTEMPTS) continue;
      throw error;
    }
    const verdict = await verifyAuditLogs(copies.map((copy) => copy.dest));
    const rotated = (await liveAuditFiles(audit)).join('\n') !== live.join('\n');
    if (!verdict.ok && rotated && attempt < AUDIT_ATTEMPTS) {
      await removeCopies();
      continue;
    }
    for (const copy of copies) files.push(entry(copy.path, 'audit', copy.digest));
    await syncDir(path.join(dir, path.dirname(AUDIT_CURRENT_PATH)));
    if (!verdict.ok)
      problems.push(
        `The audit log's chain is broken at ${path.relative(dir, verdict.file)}:${verdict.line} ` +
          `(${verdict.reason}); copied as it is. Check the live log with \`bastion audit verify\`.`,
      );
    return verdict;
  }
}

function entry(backupPath: string, role: ManifestFile['role'], digest: FileDigest): ManifestFile {
  return { path: backupPath, role, bytes: digest.bytes, sha256: digest.sha256 };
}

function notesOn(
  paths: StatePaths,
  withDatabase: boolean,
  state: { keys: string[]; audit: string[] },
): string[] {
  const notes: string[] = [];
  if (paths.store === 'redis')
    notes.push(
      'Conversations are in Redis (conversations.store=redis) and are not in this backup: back up Redis ' +
        'itself (BGSAVE/RDB or AOF, or your provider snapshots); see docs/backup-and-recovery.md.',
    );
  else if (!withDatabase) notes.push(`No conversation database at ${paths.database}: no conversation yet.`);
  if (state.keys.length === 0) notes.push(`No keys file at ${paths.keys}.`);
  if (state.audit.length === 0) notes.push(`No audit log at ${paths.audit}.`);
  return notes;
}
