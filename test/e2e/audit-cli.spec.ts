import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FileAuditSink, rotatedAuditFiles } from '../../src/observability/audit-log.js';
import type { AuditEvent } from '../../src/observability/audit-record.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/cli.js');

async function bastion(args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 15000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function event(i: number): AuditEvent {
  return {
    kind: 'tool_call',
    actor: 'key:0123456789ab',
    action: 'read_text_file',
    target: `f${i}.md`,
    outcome: 'ok',
  };
}

let dir: string;
let log: string;
let lines: string[];
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-audit-cli-'));
  log = path.join(dir, 'audit.jsonl');
  const sink = await FileAuditSink.open(log);
  for (let i = 1; i <= 25; i += 1) sink.record(event(i));
  sink.record({
    kind: 'admin',
    actor: 'operator',
    action: 'keys.revoke',
    target: '0123456789ab',
    outcome: 'ok',
  });
  await sink.close();
  lines = readFileSync(log, 'utf8').trimEnd().split('\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tampered(name: string, edit: (lines: string[]) => void): string {
  const copy = [...lines];
  edit(copy);
  const file = path.join(dir, name);
  writeFileSync(file, `${copy.join('\n')}\n`);
  return file;
}

describe('bastion audit verify', () => {
  it('exits 0 on a log written by the server, printing the count and the last hash', async () => {
    const result = await bastion(['audit', 'verify', log]);
    expect(result.code).toBe(0);
    const last = JSON.parse(lines.at(-1) as string) as { hash: string };
    expect(result.stdout.trim()).toBe(`ok: 26 records, chain intact (last hash ${last.hash})`);
  });

  it('exits 1 naming the line of an edited record', async () => {
    const file = tampered('edited.jsonl', (copy) => {
      copy[6] = (copy[6] as string).replace('"outcome":"ok"', '"outcome":"denied"');
    });
    const result = await bastion(['audit', 'verify', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`${file}:7: hash mismatch`);
  });

  it('exits 1 naming the line where a record was removed', async () => {
    const file = tampered('removed.jsonl', (copy) => copy.splice(9, 1));
    const result = await bastion(['audit', 'verify', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`${file}:10: seq 11 where 10 was expected`);
  });

  it('verifies rotated files given oldest first as one chain', async () => {
    const rotating = path.join(dir, 'rotating', 'audit.jsonl');
    const sink = await FileAuditSink.open(rotating, { maxBytes: 1000 });
    for (let i = 1; i <= 20; i += 1) {
      sink.record(event(i));
      await sink.flush();
    }
    await sink.close();
    const files = [...(await rotatedAuditFiles(rotating)), rotating];
    expect(files.length).toBeGreaterThan(2);
    const result = await bastion(['audit', 'verify', ...files]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ok: 20 records, chain intact/);

    const reordered = await bastion(['audit', 'verify', ...files.slice(1), files[0] as string]);
    expect(reordered.code).toBe(1);
  });

  it('exits 2 with a clear message when a file cannot be read', async () => {
    const missing = path.join(dir, 'missing.jsonl');
    const result = await bastion(['audit', 'verify', missing]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`Cannot read audit log ${missing}: no such file.`);
  });
});
