import type { AuditVerdict } from '../observability/audit-record.js';
import { MANIFEST_FILE, type BackupManifest, type ManifestFile } from './backup-manifest.js';

/** What `bastion backup` prints: what went where, with sizes, then notes and warnings. */
export function backupReport(result: {
  dataDir: string;
  dir: string;
  manifest: BackupManifest;
  manifestSha256: string;
  notes: string[];
}): string[] {
  const { manifest } = result;
  const width = Math.max(...manifest.files.map((file) => file.path.length));
  const lines = [
    `Backed up ${result.dataDir} to ${result.dir} (Bastion ${manifest.bastionVersion}, ${manifest.createdAt}):`,
    ...manifest.files.map((file) => `  ${file.path.padEnd(width)}  ${sized(file)}${detail(manifest, file)}`),
  ];
  if (manifest.audit.included && manifest.audit.chainIntact)
    lines.push(
      `Audit log: ${plural(manifest.audit.records ?? 0, 'record')}, chain intact (last hash ${manifest.audit.lastHash}).`,
    );
  for (const note of result.notes) lines.push(`Note: ${note}`);
  for (const problem of manifest.problems) lines.push(`Warning: ${problem}`);
  lines.push(`${MANIFEST_FILE} SHA-256 ${result.manifestSha256}`);
  return lines;
}

/** What `bastion restore` prints: what was checked, what went where, what was kept, what to do next. */
export function restoreReport(
  backup: { dir: string; manifest: BackupManifest; audit?: AuditVerdict },
  result: {
    dataDir: string;
    restored: { path: string; target: string }[];
    replaced: { from: string; to: string }[];
    untouched: string[];
    auditFiles: string[];
  },
): string[] {
  const { manifest } = backup;
  const width = Math.max(...result.restored.map((file) => file.path.length));
  const lines = [
    `Verified ${backup.dir}: backup of ${manifest.createdAt} by Bastion ${manifest.bastionVersion}, ` +
      `${plural(manifest.files.length, 'file')}, checksums match.`,
    `Restored to ${result.dataDir}:`,
    ...result.restored.map((file) => `  ${file.path.padEnd(width)}  -> ${file.target}`),
  ];
  if (backup.audit?.ok)
    lines.push(
      `Audit log: ${plural(backup.audit.records, 'record')}, chain intact (last hash ${backup.audit.lastHash}).`,
    );
  if (result.replaced.length > 0)
    lines.push(
      'Kept the replaced files (delete them once the restore is confirmed):',
      ...result.replaced.map((move) => `  ${move.to}`),
    );
  if (result.untouched.length > 0)
    lines.push(`Left as they were (the backup holds none of their kind): ${result.untouched.join(', ')}`);
  if (manifest.conversations.store === 'redis')
    lines.push(
      'Note: this backup holds no conversations (they were in Redis): restore Redis from its own backup.',
    );
  for (const problem of manifest.problems) lines.push(`Warning (recorded by the backup): ${problem}`);
  const verify =
    result.auditFiles.length > 0 ? `bastion audit verify ${result.auditFiles.join(' ')}, then ` : '';
  lines.push(`Next: ${verify}start the server and check /health/ready.`);
  return lines;
}

function detail(manifest: BackupManifest, file: ManifestFile): string {
  if (file.role === 'conversations') {
    const { conversations = 0, turns = 0 } = manifest.conversations;
    return `  ${plural(conversations, 'conversation')}, ${plural(turns, 'turn')}`;
  }
  if (file.role === 'keys' && manifest.keys.count !== undefined)
    return `  ${plural(manifest.keys.count, 'key')}`;
  return '';
}

function sized(file: ManifestFile): string {
  return plural(file.bytes, 'byte').padStart(16);
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
