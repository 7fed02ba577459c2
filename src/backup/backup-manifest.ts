import path from 'node:path';
import { z } from 'zod';
import { BackupError } from './backup.errors.js';

/** The file that describes a backup; written last, so a backup without it is incomplete. */
export const MANIFEST_FILE = 'manifest.json';
export const BACKUP_FORMAT = 'bastion-backup';
export const BACKUP_FORMAT_VERSION = 1;

/** Where each kind of state sits inside a backup directory, whatever its name on the server. */
export const DATABASE_PATH = 'conversations.db';
export const KEYS_PATH = 'keys.json';
export const AUDIT_CURRENT_PATH = 'audit/audit.jsonl';
/** A rotated audit file keeps its time suffix: `audit/audit.<time>[-n].jsonl`, as FileAuditSink names it. */
const ROTATED_AUDIT_PATH = /^audit\/audit\.(\d{4}-\d\d-\d\dT\d{6}\.\d{3}Z(?:-\d+)?)\.jsonl$/;

export type BackupRole = 'conversations' | 'keys' | 'audit';

/** The role of a path inside a backup, or undefined for any path a backup never holds. */
export function roleOf(backupPath: string): BackupRole | undefined {
  if (backupPath === DATABASE_PATH) return 'conversations';
  if (backupPath === KEYS_PATH) return 'keys';
  if (backupPath === AUDIT_CURRENT_PATH || ROTATED_AUDIT_PATH.test(backupPath)) return 'audit';
  return undefined;
}

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const count = z.number().int().min(0);

const manifestFile = z
  .object({
    path: z.string(),
    role: z.enum(['conversations', 'keys', 'audit']),
    bytes: count,
    sha256,
  })
  .strict()
  // Security: only the fixed names above, so a crafted manifest cannot name a file outside the backup.
  .refine((file) => roleOf(file.path) === file.role, { message: 'unexpected path or role' });

const manifestSchema = z
  .object({
    format: z.literal(BACKUP_FORMAT),
    formatVersion: z.literal(BACKUP_FORMAT_VERSION),
    bastionVersion: z.string().min(1),
    createdAt: z.iso.datetime(),
    conversations: z
      .object({
        store: z.enum(['sqlite', 'redis']),
        included: z.boolean(),
        conversations: count.optional(),
        turns: count.optional(),
        schemaVersion: count.optional(),
      })
      .strict(),
    keys: z.object({ included: z.boolean(), count: count.optional() }).strict(),
    audit: z
      .object({
        included: z.boolean(),
        records: count.optional(),
        lastHash: sha256.optional(),
        chainIntact: z.boolean().optional(),
      })
      .strict(),
    /** What was wrong with the live state when the backup was taken (the backup was written anyway). */
    problems: z.array(z.string()),
    /** Audit files oldest first, the current file last. */
    files: z.array(manifestFile),
  })
  .strict()
  .refine((m) => new Set(m.files.map((f) => f.path)).size === m.files.length, {
    message: 'a file is listed twice',
  });

export type BackupManifest = z.infer<typeof manifestSchema>;
export type ManifestFile = z.infer<typeof manifestFile>;

/** Parses manifest.json; a manifest that is not exactly this format refuses the backup. */
export function parseManifest(text: string): BackupManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw BackupError.integrity('backup_manifest_invalid', `${MANIFEST_FILE} is not valid JSON.`);
  }
  const parsed = manifestSchema.safeParse(value);
  if (parsed.success) return { ...parsed.data, files: inRestoreOrder(parsed.data.files) };
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  throw BackupError.integrity(
    'backup_manifest_invalid',
    `${MANIFEST_FILE} is not a Bastion backup manifest this version can read (${issue?.message ?? 'invalid'}${where}).`,
  );
}

export function manifestText(manifest: BackupManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/**
 * Files in restore order: the database, the keys, then the audit files oldest first and the current file
 * last (the order `bastion audit verify` takes them). Rotated names sort by their time suffix.
 */
export function inRestoreOrder<T extends { path: string }>(files: readonly T[]): T[] {
  const rank = (file: T): string => {
    const role = roleOf(file.path);
    if (role === 'conversations') return '0';
    if (role === 'keys') return '1';
    const rotated = ROTATED_AUDIT_PATH.exec(file.path);
    return rotated ? `2${rotatedSortKey(rotated[1] as string)}` : '3';
  };
  return [...files].sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : 0));
}

/** `2026-11-21T105756.589Z-2` sorts after `...Z-1` and after `...Z`, by number, not by text. */
function rotatedSortKey(suffix: string): string {
  const [, stamp, n = '0'] = /^(.*Z)(?:-(\d+))?$/.exec(suffix) ?? [];
  return `${stamp}#${n.padStart(10, '0')}`;
}

/** The stem FileAuditSink rotates a log under: its name without `.jsonl`. */
function auditStem(file: string): string {
  const base = path.basename(file);
  return base.endsWith('.jsonl') ? base.slice(0, -'.jsonl'.length) : base;
}

/**
 * The backup path of a live audit file: the current log is `audit/audit.jsonl`, a rotated one keeps its
 * time suffix. Undefined for a file that is neither.
 */
export function auditBackupPath(auditFile: string, liveFile: string): string | undefined {
  if (path.resolve(liveFile) === path.resolve(auditFile)) return AUDIT_CURRENT_PATH;
  const stem = auditStem(auditFile);
  const base = path.basename(liveFile);
  if (!base.startsWith(`${stem}.`) || !base.endsWith('.jsonl')) return undefined;
  const candidate = `audit/audit.${base.slice(stem.length + 1)}`;
  return ROTATED_AUDIT_PATH.test(candidate) ? candidate : undefined;
}

/** Where a backup file goes on the server: the inverse of the mapping above, for the configured paths. */
export function restoreTarget(
  backupPath: string,
  targets: { database: string; keys: string; audit: string },
): string {
  if (backupPath === DATABASE_PATH) return targets.database;
  if (backupPath === KEYS_PATH) return targets.keys;
  if (backupPath === AUDIT_CURRENT_PATH) return targets.audit;
  const rotated = ROTATED_AUDIT_PATH.exec(backupPath);
  if (!rotated) throw new RangeError(`Not a backup path: ${backupPath}`);
  return path.join(path.dirname(targets.audit), `${auditStem(targets.audit)}.${rotated[1]}.jsonl`);
}

/** Where `restore --force` keeps a file it replaces: beside it, stamped with the restore's time. */
export function replacedName(file: string, now: Date): string {
  return `${file}.replaced-${now.toISOString().replace(/[:]/g, '')}`;
}

/** SQLite finds a database's write-ahead log by name: `<database>-wal`. */
export function walOf(database: string): string {
  return `${database}-wal`;
}

export function shmOf(database: string): string {
  return `${database}-shm`;
}
