import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  auditLine,
  canonicalAuditJson,
  GENESIS_HASH,
  sealRecord,
  verifyAuditLog,
  verifyAuditLogs,
  type AuditEvent,
  type AuditRecord,
} from './audit-record.js';

const T0 = Date.parse('2025-03-01T12:00:00.000Z');

function event(i: number): AuditEvent {
  return {
    kind: 'tool_call',
    actor: 'key:0123456789ab',
    action: 'read_text_file',
    target: `src/file-${i}.ts`,
    outcome: i % 3 === 0 ? 'denied' : 'ok',
    requestId: `req-${i}`,
  };
}

/** Records first..first+count-1 of a chain, continuing from `prev`. */
function chain(count: number, prev = GENESIS_HASH, first = 1): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (let seq = first; seq < first + count; seq += 1) {
    const record = sealRecord(event(seq), prev, seq, new Date(T0 + seq * 1000));
    records.push(record);
    prev = record.hash;
  }
  return records;
}

let dir: string;
let counter = 0;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-audit-record-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fileOf(lines: string[], ending = '\n'): string {
  counter += 1;
  const file = path.join(dir, `audit-${counter}.jsonl`);
  writeFileSync(file, lines.join('\n') + ending);
  return file;
}

const linesOf = (records: AuditRecord[]): string[] => records.map(auditLine);

describe('audit record sealing', () => {
  it('serializes in the documented fixed key order, leaving absent optional fields out', () => {
    const record = sealRecord(
      {
        outcome: 'denied',
        action: 'authenticate',
        actor: 'anonymous',
        kind: 'auth_failure',
        code: 'bad_key',
      },
      GENESIS_HASH,
      1,
      new Date(T0),
    );
    const canonical =
      '{"ts":"2025-03-01T12:00:00.000Z","seq":1,"kind":"auth_failure","actor":"anonymous",' +
      `"action":"authenticate","outcome":"denied","code":"bad_key","prev":"${GENESIS_HASH}"}`;
    expect(canonicalAuditJson(record)).toBe(canonical);
    expect(record.hash).toBe(createHash('sha256').update(canonical).digest('hex'));
    expect(auditLine(record)).toBe(`${canonical.slice(0, -1)},"hash":"${record.hash}"}`);
  });

  it('writes only the known fields, whatever else the event object carries', () => {
    const leaky = { ...event(1), content: 'SECRET=1', args: { path: '/etc/passwd' } } as AuditEvent;
    const line = auditLine(sealRecord(leaky, GENESIS_HASH, 1, new Date(T0)));
    expect(line).not.toContain('SECRET');
    expect(line).not.toContain('passwd');
  });

  it('escapes newlines and quotes in a target, keeping one record per line', async () => {
    const record = sealRecord(
      { ...event(1), target: 'a\n{"seq":9}\u2028"b"' },
      GENESIS_HASH,
      1,
      new Date(T0),
    );
    expect(auditLine(record)).not.toContain('\n');
    expect(await verifyAuditLog(fileOf([auditLine(record)]))).toMatchObject({ ok: true, records: 1 });
  });
});

describe('audit log verification', () => {
  it('accepts an intact chain and reports its length and last hash', async () => {
    const records = chain(20);
    expect(await verifyAuditLog(fileOf(linesOf(records)))).toEqual({
      ok: true,
      records: 20,
      lastSeq: 20,
      lastHash: records[19]?.hash,
      anchor: GENESIS_HASH,
    });
  });

  it('accepts an empty file', async () => {
    const file = path.join(dir, 'empty.jsonl');
    writeFileSync(file, '');
    expect(await verifyAuditLog(file)).toMatchObject({ ok: true, records: 0 });
  });

  it('detects an edited field by its hash, at the edited line', async () => {
    const lines = linesOf(chain(5));
    lines[2] = (lines[2] as string).replace('"outcome":"denied"', '"outcome":"ok"');
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({
      ok: false,
      records: 2,
      line: 3,
      reason: expect.stringContaining('hash mismatch'),
    });
  });

  it('detects an edited record whose hash was recomputed, at the next line', async () => {
    const records = chain(5);
    const forged = sealRecord(
      { ...event(3), outcome: 'ok' },
      records[1]?.hash as string,
      3,
      new Date(T0 + 3000),
    );
    const lines = linesOf(records);
    lines[2] = auditLine(forged);
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({
      ok: false,
      line: 4,
      reason: expect.stringContaining("prev does not match the previous record's hash"),
    });
  });

  it('detects a removed record', async () => {
    const lines = linesOf(chain(5));
    lines.splice(2, 1);
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({
      ok: false,
      records: 2,
      line: 3,
      reason: expect.stringContaining('seq 4 where 3 was expected'),
    });
  });

  it('reports a last hash that changes when trailing records are cut (to compare with one kept elsewhere)', async () => {
    const records = chain(5);
    const verdict = await verifyAuditLog(fileOf(linesOf(records.slice(0, 4))));
    expect(verdict).toMatchObject({ ok: true, records: 4 });
    expect(verdict.ok && verdict.lastHash).not.toBe(records[4]?.hash);
  });

  it('detects two swapped records', async () => {
    const lines = linesOf(chain(5));
    [lines[1], lines[2]] = [lines[2] as string, lines[1] as string];
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({
      ok: false,
      line: 2,
      reason: expect.stringContaining('seq 3 where 2 was expected'),
    });
  });

  it('detects a garbage line', async () => {
    const lines = linesOf(chain(5));
    lines.splice(3, 0, '{"ts":"2025-03-01T12:00:0');
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({
      ok: false,
      line: 4,
      reason: expect.stringContaining('invalid JSON'),
    });
  });

  it('detects a last line cut short by a crash', async () => {
    const lines = linesOf(chain(3));
    lines[2] = (lines[2] as string).slice(0, 50);
    expect(await verifyAuditLog(fileOf(lines, ''))).toMatchObject({
      ok: false,
      line: 3,
      reason: expect.stringContaining('incomplete last line'),
    });
  });

  it('detects a blank line slipped between records', async () => {
    const lines = linesOf(chain(3));
    lines.splice(1, 0, '');
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({ ok: false, line: 2, reason: 'empty line' });
  });

  it('detects an extra field', async () => {
    const lines = linesOf(chain(3));
    lines[1] = (lines[1] as string).replace('{', '{"content":"SECRET=1",');
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({
      ok: false,
      line: 2,
      reason: 'unknown field "content"',
    });
  });

  it('detects a missing field', async () => {
    const lines = linesOf(chain(3));
    lines[1] = (lines[1] as string).replace(/"actor":"[^"]*",/, '');
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({
      ok: false,
      line: 2,
      reason: 'missing field "actor"',
    });
  });

  it('detects a record re-serialized out of canonical form', async () => {
    const lines = linesOf(chain(3));
    lines[1] = JSON.stringify(JSON.parse(lines[1] as string), null, 0).replace(':', ': ');
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({
      ok: false,
      line: 2,
      reason: expect.stringContaining('not in canonical form'),
    });
  });

  it('refuses a chain whose first record (seq 1) does not start from zeros', async () => {
    const lines = linesOf(chain(3, 'a'.repeat(64)));
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({ ok: false, line: 1 });
  });

  it('refuses a file whose leading records were removed down to a zero prev', async () => {
    const lines = linesOf(chain(3, GENESIS_HASH, 4));
    expect(await verifyAuditLog(fileOf(lines))).toMatchObject({
      ok: false,
      line: 1,
      reason: expect.stringContaining('records before it were removed'),
    });
  });
});

describe('rotated audit files', () => {
  const all = chain(12);
  const older = linesOf(all.slice(0, 5));
  const newer = linesOf(all.slice(5));

  it('verifies a rotated file on its own, trusting and reporting its first prev as the anchor', async () => {
    expect(await verifyAuditLog(fileOf(newer))).toMatchObject({
      ok: true,
      records: 7,
      lastSeq: 12,
      anchor: all[4]?.hash,
    });
  });

  it('checks the first record against the previous file when its last hash is given', async () => {
    const file = fileOf(newer);
    const previousHash = all[4]?.hash as string;
    expect(await verifyAuditLog(file, { previousHash, previousSeq: 5 })).toMatchObject({ ok: true });
    expect(await verifyAuditLog(file, { previousHash: all[3]?.hash as string })).toMatchObject({
      ok: false,
      line: 1,
    });
    expect(await verifyAuditLog(file, { previousHash, previousSeq: 4 })).toMatchObject({
      ok: false,
      line: 1,
    });
  });

  it('verifies the chain across files in order, and fails on files out of order or missing', async () => {
    const [a, b] = [fileOf(older), fileOf(newer)];
    expect(await verifyAuditLogs([a, b])).toMatchObject({
      ok: true,
      records: 12,
      lastHash: all[11]?.hash,
      anchor: GENESIS_HASH,
    });
    expect(await verifyAuditLogs([b, a])).toMatchObject({ ok: false, file: a, line: 1, records: 7 });
    const middle = fileOf(linesOf(all.slice(8)));
    expect(await verifyAuditLogs([a, middle])).toMatchObject({ ok: false, file: middle, line: 1 });
  });

  it('rejects an unreadable file rather than call it intact', async () => {
    await expect(verifyAuditLog(path.join(dir, 'missing.jsonl'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });
});
