import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BastionConfig } from '../config/config.schema.js';
import { verifyAuditLogs, type AuditVerdict } from '../observability/audit-record.js';
import { copyNew, digestFile, kindOf, syncDir } from './backup-files.js';
import {
  MANIFEST_FILE,
  parseManifest,
  replacedName,
  restoreTarget,
  walOf,
  type BackupManifest,
  type BackupRole,
  type ManifestFile,
} from './backup-manifest.js';
import { BackupError } from './backup.errors.js';
import { databaseInUse, inspectDatabase } from './sqlite-snapshot.js';
import { existingState, statePaths, type ExistingState, type StatePaths } from './state-paths.js';

/** A backup whose every file matched its manifest when it was checked. */
export interface VerifiedBackup {
  dir: string;
  manifest: BackupManifest;
  /** The backup's audit chain, when it holds audit files. */
  audit?: AuditVerdict;
}

export interface RestoreResult {
  dataDir: string;
  /** Each backup file and where it now is. */
  restored: { path: string; target: string }[];
  /** Files that were there before, kept beside under a `.replaced-<time>` name (only with --force). */
  replaced: { from: string; to: string }[];
  /** State of a kind the backup does not hold, left as it was. */
  untouched: string[];
  /** The restored audit files, oldest first: what to give `bastion audit verify`. */
  auditFiles: string[];
}

/**
 * Checks a backup before anything is written: a manifest this version reads, and every file it lists
 * present, a regular file, of its size and SHA-256; then the copy's audit chain. Changes nothing.
 */
export async function verifyBackup(from: string): Promise<VerifiedBackup> {
  const dir = path.resolve(from);
  if ((await kindOf(dir)) !== 'directory')
    throw BackupError.refused('backup_not_found', `--from ${dir} is not a directory.`);
  const manifestFile = path.join(dir, MANIFEST_FILE);
  if ((await kindOf(manifestFile)) !== 'file')
    throw BackupError.integrity(
      'backup_incomplete',
      `${dir} holds no ${MANIFEST_FILE}: not a Bastion backup, or one that did not finish.`,
    );
  const manifest = parseManifest(await readFile(manifestFile, 'utf8'));
  for (const file of manifest.files) await verifyFile(dir, file);
  const auditFiles = manifest.files.filter((f) => f.role === 'audit').map((f) => path.join(dir, f.path));
  if (auditFiles.length === 0) return { dir, manifest };
  const audit = await verifyAuditLogs(auditFiles);
  checkAuditAgainstManifest(dir, manifest, audit);
  return { dir, manifest, audit };
}

/**
 * The chain must be what the backup recorded: intact up to the same last hash, or broken when the backup
 * already found the live log broken (then it is restored as it is, with that warning).
 */
function checkAuditAgainstManifest(dir: string, manifest: BackupManifest, audit: AuditVerdict): void {
  if (!audit.ok && manifest.audit.chainIntact !== false)
    throw BackupError.integrity(
      'backup_audit_chain_broken',
      `The audit chain in the backup is broken at ${path.relative(dir, audit.file)}:${audit.line} ` +
        `(${audit.reason}), though the backup recorded it intact. Nothing was restored.`,
    );
  if (audit.ok && manifest.audit.lastHash !== undefined && audit.lastHash !== manifest.audit.lastHash)
    throw BackupError.integrity(
      'backup_audit_chain_broken',
      `The audit log in the backup does not end with the record ${MANIFEST_FILE} names. Nothing was restored.`,
    );
}

async function verifyFile(dir: string, file: ManifestFile): Promise<void> {
  const source = path.join(dir, file.path);
  const kind = await kindOf(source);
  if (kind === 'missing')
    throw BackupError.integrity('backup_incomplete', `The backup is incomplete: ${file.path} is missing.`);
  if (kind !== 'file')
    throw BackupError.integrity('backup_tampered', `${file.path} in the backup is not a regular file.`);
  const digest = await digestFile(source);
  if (digest.bytes !== file.bytes || digest.sha256 !== file.sha256) throw mismatch(file.path);
}

function mismatch(backupPath: string): BackupError {
  return BackupError.integrity(
    'backup_checksum_mismatch',
    `${backupPath} in the backup does not match the SHA-256 in ${MANIFEST_FILE}: the backup is damaged ` +
      'or was changed. Nothing was restored.',
  );
}

interface Staged {
  file: ManifestFile;
  temp: string;
  target: string;
}

/**
 * Restores a verified backup into the data directory (and the keys file and audit log the config names).
 * Refuses a target that already holds state unless `force`, and one a running server is using. Every file
 * is first copied beside its target under a temporary name and checked again; only then are the targets
 * replaced, each by a rename. With `force`, the files replaced are kept beside under `.replaced-<time>`.
 */
export async function restoreBackup(
  backup: VerifiedBackup,
  config: BastionConfig,
  options: { force?: boolean; now?: () => Date } = {},
): Promise<RestoreResult> {
  const paths = statePaths(config);
  let state = await existingState(paths);
  const present = [...state.conversations, ...state.keys, ...state.audit];
  if (present.length > 0 && !options.force)
    throw BackupError.refused(
      'restore_target_has_state',
      `${paths.dataDir} already holds Bastion state (${present.map((f) => shown(paths.dataDir, f)).join(', ')}). ` +
        'Restore into an empty data directory, or add --force to replace it (replaced files are kept ' +
        'beside, renamed *.replaced-<time>).',
    );
  if (state.conversations.includes(paths.database)) {
    // Security: never swap files under a server that has them open; it would go on writing to the old ones.
    if (databaseInUse(paths.database))
      throw BackupError.refused(
        'restore_target_in_use',
        `${paths.database} is open in another process, most likely a running Bastion server: stop it first.`,
      );
    // As the last connection to close, the check folded a write-ahead log left by a crash into the database.
    state = await existingState(paths);
  }

  const targets = backup.manifest.files.map((file) => ({ file, target: restoreTarget(file.path, paths) }));
  for (const dir of new Set([paths.dataDir, ...targets.map((t) => path.dirname(t.target))]))
    await mkdir(dir, { recursive: true, mode: 0o700 });
  const staged = await stage(backup.dir, targets);
  try {
    const roles = new Set(backup.manifest.files.map((file) => file.role));
    if (roles.has('conversations')) for (const file of state.shm) await rm(file, { force: true });
    const replaced = await replace(staged, asideMoves(paths, state, roles, options.now?.() ?? new Date()));
    for (const dir of new Set(staged.map((s) => path.dirname(s.target)))) await syncDir(dir);
    return {
      dataDir: paths.dataDir,
      restored: staged.map(({ file, target }) => ({ path: file.path, target })),
      replaced,
      untouched: untouchedState(state, roles),
      auditFiles: staged.filter((s) => s.file.role === 'audit').map((s) => s.target),
    };
  } finally {
    await Promise.all(staged.map((s) => rm(s.temp, { force: true })));
  }
}

/**
 * Moves the old files aside, then each staged file into place, all by rename. Should one fail, what was
 * done is undone in reverse, so the data directory is left as it was found.
 */
async function replace(staged: Staged[], moves: Move[]): Promise<Move[]> {
  const done: Move[] = [];
  try {
    for (const move of moves) {
      if ((await kindOf(move.from)) === 'missing') continue;
      await rename(move.from, move.to);
      done.push(move);
    }
    for (const { temp, target } of staged) {
      await rename(temp, target);
      // Undone by moving it back to its temporary name, which the caller then removes.
      done.push({ from: temp, to: target });
    }
    return done.filter((move) => !staged.some((s) => s.temp === move.from));
  } catch (error) {
    for (const move of done.reverse()) await rename(move.to, move.from).catch(() => undefined);
    throw error;
  }
}

interface Move {
  from: string;
  to: string;
}

/**
 * Where the present files of each kind the backup holds go, so nothing of the old state mixes with the
 * restored one: an old write-ahead log replayed into the restored database, or old rotated audit files
 * around the restored chain. SQLite's shared-memory index is rebuilt on open, so it is simply removed.
 */
function asideMoves(paths: StatePaths, state: ExistingState, roles: Set<BackupRole>, now: Date): Move[] {
  const moves: Move[] = [];
  if (roles.has('conversations')) {
    const database = paths.database;
    if (state.conversations.includes(database))
      moves.push({ from: database, to: replacedName(database, now) });
    // The log follows its database's new name, so the two stay a pair SQLite can open together.
    if (state.conversations.includes(walOf(database)))
      moves.push({ from: walOf(database), to: walOf(replacedName(database, now)) });
  }
  if (roles.has('keys'))
    for (const file of state.keys) moves.push({ from: file, to: replacedName(file, now) });
  if (roles.has('audit'))
    for (const file of state.audit) moves.push({ from: file, to: replacedName(file, now) });
  return moves;
}

/** Copies every file beside its target under a temporary name, checking its SHA-256 on the way. */
async function stage(from: string, targets: { file: ManifestFile; target: string }[]): Promise<Staged[]> {
  const staged: Staged[] = [];
  try {
    for (const { file, target } of targets) {
      const temp = path.join(
        path.dirname(target),
        `.${path.basename(target)}.restore-${randomBytes(6).toString('hex')}`,
      );
      staged.push({ file, temp, target });
      const digest = await copyNew(path.join(from, file.path), temp);
      // Checked again as copied: the backup may have changed since it was verified.
      if (digest.bytes !== file.bytes || digest.sha256 !== file.sha256) throw mismatch(file.path);
      if (file.role === 'conversations') inspectDatabase(temp, 'backup_database_corrupt');
    }
    return staged;
  } catch (error) {
    await Promise.all(staged.map((s) => rm(s.temp, { force: true })));
    throw error;
  }
}

function untouchedState(state: ExistingState, roles: Set<BackupRole>): string[] {
  return [
    ...(roles.has('conversations') ? [] : state.conversations),
    ...(roles.has('keys') ? [] : state.keys),
    ...(roles.has('audit') ? [] : state.audit),
  ];
}

/** A path inside the data directory relative to it, any other in full. */
function shown(dataDir: string, file: string): string {
  const relative = path.relative(dataDir, file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}
