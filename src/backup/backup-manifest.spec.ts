import { describe, expect, it } from '@jest/globals';
import {
  auditBackupPath,
  inRestoreOrder,
  manifestText,
  parseManifest,
  replacedName,
  restoreTarget,
  roleOf,
  walOf,
  type BackupManifest,
} from './backup-manifest.js';
import { backupReport, restoreReport } from './backup-report.js';
import { BackupError } from './backup.errors.js';

const HASH = 'a'.repeat(64);

function manifest(overrides: Partial<BackupManifest> = {}): BackupManifest {
  return {
    format: 'bastion-backup',
    formatVersion: 1,
    bastionVersion: '0.1.0',
    createdAt: '2026-11-21T10:57:56.589Z',
    conversations: { store: 'sqlite', included: true, conversations: 1, turns: 2, schemaVersion: 1 },
    keys: { included: true, count: 1 },
    audit: { included: true, records: 7, lastHash: HASH, chainIntact: true },
    problems: [],
    files: [
      { path: 'conversations.db', role: 'conversations', bytes: 24576, sha256: HASH },
      { path: 'keys.json', role: 'keys', bytes: 315, sha256: HASH },
      { path: 'audit/audit.jsonl', role: 'audit', bytes: 2511, sha256: HASH },
    ],
    ...overrides,
  };
}

/** The manifest as JSON with one file entry replaced. */
function withFile(file: Record<string, unknown>): string {
  const value = JSON.parse(manifestText(manifest())) as { files: unknown[] };
  value.files[1] = file;
  return JSON.stringify(value);
}

function refusal(run: () => unknown): BackupError {
  try {
    run();
  } catch (error) {
    if (error instanceof BackupError) return error;
    throw error;
  }
  throw new Error('expected a BackupError');
}

describe('roleOf', () => {
  it.each([
    ['conversations.db', 'conversations'],
    ['keys.json', 'keys'],
    ['audit/audit.jsonl', 'audit'],
    ['audit/audit.2026-11-20T235959.123Z.jsonl', 'audit'],
    ['audit/audit.2026-11-20T235959.123Z-2.jsonl', 'audit'],
  ])('knows %s as %s', (backupPath, role) => {
    expect(roleOf(backupPath)).toBe(role);
  });

  it.each([
    '../keys.json',
    '/etc/passwd',
    'audit/../../keys.json',
    'conversations.db-wal',
    'audit/other.jsonl',
    'audit/audit.yesterday.jsonl',
    'audit\\audit.jsonl',
  ])('knows nothing of %s', (backupPath) => {
    expect(roleOf(backupPath)).toBeUndefined();
  });
});

describe('parseManifest', () => {
  it('reads back what manifestText writes', () => {
    expect(parseManifest(manifestText(manifest()))).toEqual(manifest());
  });

  it('refuses a path that leaves the backup, naming where', () => {
    const error = refusal(() =>
      parseManifest(withFile({ path: '../../etc/cron.d/x', role: 'keys', bytes: 1, sha256: HASH })),
    );
    expect(error).toMatchObject({ code: 'backup_manifest_invalid', exitCode: 1 });
    expect(error.message).toMatch(/unexpected path or role at files\.1/);
  });

  it('refuses a known path under another role', () => {
    const text = withFile({ path: 'keys.json', role: 'audit', bytes: 1, sha256: HASH });
    expect(refusal(() => parseManifest(text)).code).toBe('backup_manifest_invalid');
  });

  it('refuses a file listed twice', () => {
    const text = withFile({ path: 'conversations.db', role: 'conversations', bytes: 1, sha256: HASH });
    expect(refusal(() => parseManifest(text)).message).toMatch(/listed twice/);
  });

  it.each([
    ['a checksum that is not SHA-256', { sha256: 'abc' }],
    ['a negative size', { bytes: -1 }],
    ['an unknown field', { mode: 0o777 }],
  ])('refuses %s', (_name, change) => {
    const text = withFile({ path: 'keys.json', role: 'keys', bytes: 1, sha256: HASH, ...change });
    expect(refusal(() => parseManifest(text)).code).toBe('backup_manifest_invalid');
  });

  it('refuses another format version', () => {
    const text = JSON.stringify({ ...manifest(), formatVersion: 2 });
    expect(refusal(() => parseManifest(text)).message).toMatch(/at formatVersion/);
  });

  it('refuses text that is not JSON', () => {
    expect(refusal(() => parseManifest('{"format": "bastion-backup",')).message).toBe(
      'manifest.json is not valid JSON.',
    );
  });

  it('puts the files in restore order whatever order the manifest lists them in', () => {
    const files = [...manifest().files].reverse();
    expect(parseManifest(manifestText(manifest({ files }))).files.map((f) => f.path)).toEqual([
      'conversations.db',
      'keys.json',
      'audit/audit.jsonl',
    ]);
  });
});

describe('inRestoreOrder', () => {
  it('sorts rotated audit files oldest first, counters by number, the current file last', () => {
    const paths = [
      'audit/audit.jsonl',
      'audit/audit.2026-11-21T000000.000Z-10.jsonl',
      'keys.json',
      'audit/audit.2026-11-21T000000.000Z-2.jsonl',
      'audit/audit.2026-11-21T000000.000Z.jsonl',
      'audit/audit.2026-11-20T235959.999Z.jsonl',
      'conversations.db',
    ].map((p) => ({ path: p }));
    expect(inRestoreOrder(paths).map((p) => p.path)).toEqual([
      'conversations.db',
      'keys.json',
      'audit/audit.2026-11-20T235959.999Z.jsonl',
      'audit/audit.2026-11-21T000000.000Z.jsonl',
      'audit/audit.2026-11-21T000000.000Z-2.jsonl',
      'audit/audit.2026-11-21T000000.000Z-10.jsonl',
      'audit/audit.jsonl',
    ]);
  });
});

describe('audit file names', () => {
  const live = '/srv/bastion/data/audit/audit.jsonl';

  it('maps the current log and a rotated one into the backup, and nothing else', () => {
    expect(auditBackupPath(live, live)).toBe('audit/audit.jsonl');
    expect(auditBackupPath(live, '/srv/bastion/data/audit/audit.2026-11-20T235959.123Z-1.jsonl')).toBe(
      'audit/audit.2026-11-20T235959.123Z-1.jsonl',
    );
    expect(auditBackupPath(live, '/srv/bastion/data/audit/audit.jsonl.replaced-x')).toBeUndefined();
    expect(auditBackupPath(live, '/srv/bastion/data/audit/other.2026-11-20T235959.123Z.jsonl')).toBe(
      undefined,
    );
  });

  it('restores under the target log name, which may differ from the backed-up one', () => {
    const targets = {
      database: '/d/conversations.db',
      keys: '/k/keys.json',
      audit: '/var/log/bastion.jsonl',
    };
    expect(restoreTarget('audit/audit.jsonl', targets)).toBe('/var/log/bastion.jsonl');
    expect(restoreTarget('audit/audit.2026-11-20T235959.123Z.jsonl', targets)).toBe(
      '/var/log/bastion.2026-11-20T235959.123Z.jsonl',
    );
    expect(restoreTarget('conversations.db', targets)).toBe('/d/conversations.db');
    expect(restoreTarget('keys.json', targets)).toBe('/k/keys.json');
    expect(() => restoreTarget('../keys.json', targets)).toThrow(RangeError);
  });

  it('round-trips a rotated name through a log named without .jsonl', () => {
    const log = '/var/log/bastion.log';
    const rotated = '/var/log/bastion.log.2026-11-20T235959.123Z.jsonl';
    const inBackup = auditBackupPath(log, rotated) as string;
    expect(inBackup).toBe('audit/audit.2026-11-20T235959.123Z.jsonl');
    expect(restoreTarget(inBackup, { database: '', keys: '', audit: log })).toBe(rotated);
  });
});

describe('replaced files', () => {
  it('stamps the name with the time, and the write-ahead log follows its database', () => {
    const now = new Date('2026-11-21T10:57:56.589Z');
    const database = replacedName('/d/conversations.db', now);
    expect(database).toBe('/d/conversations.db.replaced-2026-11-21T105756.589Z');
    expect(walOf(database)).toBe('/d/conversations.db.replaced-2026-11-21T105756.589Z-wal');
  });
});

describe('BackupError', () => {
  it('exits 1 for a backup that failed a check and 2 for a refusal', () => {
    expect(BackupError.integrity('backup_checksum_mismatch', 'x').exitCode).toBe(1);
    expect(BackupError.refused('restore_target_has_state', 'x')).toMatchObject({
      exitCode: 2,
      code: 'restore_target_has_state',
      name: 'BackupError',
    });
  });
});

describe('reports', () => {
  it('lists each backed-up file with its size and what it holds, then notes, warnings and the manifest hash', () => {
    const lines = backupReport({
      dataDir: '/d',
      dir: '/b',
      manifest: manifest({ problems: ['keys.json is not a valid keys file'] }),
      manifestSha256: 'f'.repeat(64),
      notes: ['No audit log at /d/audit/audit.jsonl.'],
    });
    expect(lines[0]).toBe('Backed up /d to /b (Bastion 0.1.0, 2026-11-21T10:57:56.589Z):');
    expect(lines[1]).toMatch(/^ {2}conversations\.db +24576 bytes {2}1 conversation, 2 turns$/);
    expect(lines[2]).toMatch(/^ {2}keys\.json +315 bytes {2}1 key$/);
    expect(lines).toContain(`Audit log: 7 records, chain intact (last hash ${HASH}).`);
    expect(lines).toContain('Note: No audit log at /d/audit/audit.jsonl.');
    expect(lines).toContain('Warning: keys.json is not a valid keys file');
    expect(lines.at(-1)).toBe(`manifest.json SHA-256 ${'f'.repeat(64)}`);
  });

  it('says where each file went, what was kept aside, and the audit command to run next', () => {
    const lines = restoreReport(
      { dir: '/b', manifest: manifest({ conversations: { store: 'redis', included: false } }) },
      {
        dataDir: '/d',
        restored: [{ path: 'keys.json', target: '/d/keys.json' }],
        replaced: [{ from: '/d/keys.json', to: '/d/keys.json.replaced-T' }],
        untouched: ['/d/conversations.db'],
        auditFiles: ['/d/audit/audit.1.jsonl', '/d/audit/audit.jsonl'],
      },
    );
    expect(lines).toContain('  keys.json  -> /d/keys.json');
    expect(lines).toContain('  /d/keys.json.replaced-T');
    expect(lines.join('\n')).toMatch(/Left as they were .*: \/d\/conversations\.db/);
    expect(lines.join('\n')).toMatch(/no conversations \(they were in Redis\)/);
    expect(lines.at(-1)).toBe(
      'Next: bastion audit verify /d/audit/audit.1.jsonl /d/audit/audit.jsonl, then start the server and check /health/ready.',
    );
  });
});
