import {
  appendFileSync,
  chmodSync,
  mkdtempSync,
  renameSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FileAuditSink, rotatedAuditFiles } from '../../src/observability/audit-log.js';
import {
  GENESIS_HASH,
  verifyAuditLog,
  verifyAuditLogs,
  type AuditEvent,
  type AuditRecord,
} from '../../src/observability/audit-record.js';

let root: string;
let counter = 0;
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'bastion-audit-log-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh directory (not yet created) for one test's log. */
function logPath(): string {
  counter += 1;
  return path.join(root, `case-${counter}`, 'audit', 'audit.jsonl');
}

function event(i: number): AuditEvent {
  return {
    kind: 'tool_call',
    actor: 'key:0123456789ab',
    action: 'write_file',
    target: `notes/day-${i}.md`,
    outcome: 'ok',
    requestId: `req-${i}`,
  };
}

function recordsOf(file: string): AuditRecord[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditRecord);
}

describe('FileAuditSink', () => {
  it('writes records that verify, in a 0600 file inside a 0700 directory it creates', async () => {
    const file = logPath();
    const sink = await FileAuditSink.open(file);
    for (let i = 1; i <= 5; i += 1) sink.record(event(i));
    sink.record({ kind: 'auth_failure', actor: 'anonymous', action: 'authenticate', outcome: 'denied' });
    await sink.close();

    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(await verifyAuditLog(file)).toMatchObject({ ok: true, records: 6, anchor: GENESIS_HASH });
    const records = recordsOf(file);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(records[5]).toMatchObject({ kind: 'auth_failure', actor: 'anonymous', outcome: 'denied' });
  });

  it('tightens an existing log to mode 0600', async () => {
    const file = logPath();
    await (await FileAuditSink.open(file)).close();
    chmodSync(file, 0o644);
    await (await FileAuditSink.open(file)).close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('continues the chain (seq and prev) when reopened, and the whole file still verifies', async () => {
    const file = logPath();
    const first = await FileAuditSink.open(file);
    for (let i = 1; i <= 3; i += 1) first.record(event(i));
    await first.close();
    const second = await FileAuditSink.open(file);
    for (let i = 4; i <= 5; i += 1) second.record(event(i));
    await second.close();

    const records = recordsOf(file);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(records[3]?.prev).toBe(records[2]?.hash);
    expect(await verifyAuditLog(file)).toMatchObject({ ok: true, records: 5, lastHash: records[4]?.hash });
  });

  it('refuses to open a log whose last line is not a valid record, leaving it as it was', async () => {
    const file = logPath();
    const sink = await FileAuditSink.open(file);
    sink.record(event(1));
    await sink.close();
    appendFileSync(file, '{"ts":"2025-01-01T00:00:00.000Z","seq":2}\n');
    const before = readFileSync(file, 'utf8');
    await expect(FileAuditSink.open(file)).rejects.toThrow(/does not end with a valid record/);
    expect(readFileSync(file, 'utf8')).toBe(before);

    writeFileSync(file, before.slice(0, -20));
    await expect(FileAuditSink.open(file)).rejects.toThrow(/the last line is incomplete/);
  });

  it('lands every record of 10,000 record() calls on flush()', async () => {
    const file = logPath();
    const sink = await FileAuditSink.open(file);
    for (let i = 1; i <= 10_000; i += 1) sink.record(event(i));
    await sink.flush();
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(10_000);
    await sink.close();
    expect(await verifyAuditLog(file)).toMatchObject({ ok: true, records: 10_000, lastSeq: 10_000 });
  });

  it('refuses record() after close without throwing into the caller, and reports it once', async () => {
    const errors: Error[] = [];
    const file = logPath();
    const sink = await FileAuditSink.open(file, { onError: (error) => errors.push(error) });
    sink.record(event(1));
    await sink.close();
    expect(() => sink.record(event(2))).not.toThrow();
    sink.record(event(3));
    expect(sink.refusedAfterClose).toBe(2);
    expect(errors.map((e) => e.message)).toEqual(['A record came after the audit log closed.']);
    expect(await verifyAuditLog(file)).toMatchObject({ ok: true, records: 1 });
  });
});

describe('FileAuditSink rotation', () => {
  const lineBytes = (file: string): number =>
    Buffer.byteLength(readFileSync(file, 'utf8').split('\n')[0] + '\n');

  it('rotates before a file would pass maxBytes, the chain verifying across the files', async () => {
    const file = logPath();
    const sink = await FileAuditSink.open(file, { maxBytes: 1000, keep: 100 });
    for (let i = 1; i <= 40; i += 1) {
      sink.record(event(i));
      await sink.flush();
    }
    await sink.close();

    const rotated = await rotatedAuditFiles(file);
    expect(rotated.length).toBeGreaterThan(5);
    for (const name of rotated) {
      expect(path.basename(name)).toMatch(/^audit\.\d{4}-\d\d-\d\dT\d{6}\.\d{3}Z(-\d+)?\.jsonl$/);
      expect(statSync(name).size).toBeLessThanOrEqual(1000);
      expect(statSync(name).size).toBeGreaterThan(1000 - lineBytes(name));
    }
    expect(await verifyAuditLogs([...rotated, file])).toMatchObject({
      ok: true,
      records: 40,
      lastSeq: 40,
      anchor: GENESIS_HASH,
    });
    const second = recordsOf(rotated[1] as string)[0];
    expect(second?.prev).toBe(recordsOf(rotated[0] as string).at(-1)?.hash);
  });

  it('deletes the oldest rotated files beyond keep; what is left verifies from its anchor', async () => {
    const file = logPath();
    const sink = await FileAuditSink.open(file, { maxBytes: 600, keep: 3 });
    for (let i = 1; i <= 40; i += 1) {
      sink.record(event(i));
      await sink.flush();
    }
    await sink.close();

    const rotated = await rotatedAuditFiles(file);
    expect(rotated).toHaveLength(3);
    const verdict = await verifyAuditLogs([...rotated, file]);
    expect(verdict).toMatchObject({ ok: true, lastSeq: 40 });
    expect(verdict.ok && verdict.anchor).not.toBe(GENESIS_HASH);
    expect(verdict.ok && verdict.records).toBeLessThan(40);
  });

  it('keeps order through a burst during rotation and names rotations in the same millisecond apart', async () => {
    const file = logPath();
    const frozen = new Date('2025-03-01T12:00:00.000Z');
    const sink = await FileAuditSink.open(file, { maxBytes: 800, keep: 100, now: () => frozen });
    for (let round = 0; round < 6; round += 1) {
      for (let i = 1; i <= 10; i += 1) sink.record(event(round * 10 + i));
      await sink.flush();
    }
    await sink.close();

    const rotated = await rotatedAuditFiles(file);
    expect(rotated.map((name) => path.basename(name)).slice(0, 3)).toEqual([
      'audit.2025-03-01T120000.000Z.jsonl',
      'audit.2025-03-01T120000.000Z-1.jsonl',
      'audit.2025-03-01T120000.000Z-2.jsonl',
    ]);
    expect(await verifyAuditLogs([...rotated, file])).toMatchObject({ ok: true, records: 60, lastSeq: 60 });
  });

  it('continues from the newest rotated file when the current file is empty or missing', async () => {
    const file = logPath();
    const sink = await FileAuditSink.open(file, { maxBytes: 600 });
    for (let i = 1; i <= 10; i += 1) {
      sink.record(event(i));
      await sink.flush();
    }
    await sink.close();
    const last = recordsOf(file).at(-1) as AuditRecord;
    // As if the process stopped right after renaming the current file away.
    renameSync(file, path.join(path.dirname(file), 'audit.2100-01-01T000000.000Z.jsonl'));

    const reopened = await FileAuditSink.open(file);
    reopened.record(event(11));
    await reopened.close();
    expect(recordsOf(file)[0]).toMatchObject({ seq: 11, prev: last.hash });
    expect(await verifyAuditLogs([...(await rotatedAuditFiles(file)), file])).toMatchObject({
      ok: true,
      records: 11,
    });
  });
});
