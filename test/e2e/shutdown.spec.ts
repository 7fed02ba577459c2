import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { verifyAuditLog } from '../../src/observability/audit-record.js';
import { spawnServer, type CliServer } from '../support/cli-server.js';
import { postMcp } from '../support/http-server.js';
import { waitFor } from '../support/processes.js';

const FILES = 3_000;

let base: string;
let child: ChildProcess;
let url: string;
let server: CliServer;
let exited: Promise<number | null>;

beforeAll(async () => {
  base = mkdtempSync(path.join(os.tmpdir(), 'bastion-shutdown-'));
  const tree = path.join(base, 'ws', 'tree');
  mkdirSync(tree, { recursive: true });
  const text = 'nothing to see here\n'.repeat(1_600);
  for (let i = 0; i < FILES; i++) writeFileSync(path.join(tree, `f${i}.txt`), text);
  server = await spawnServer(path.join(base, 'ws'), path.join(base, 'data'), {
    BASTION_SHUTDOWN_GRACE_MS: '20000',
  });
  ({ child, url, exited } = server);
});

afterAll(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(base, { recursive: true, force: true });
});

/** Reads an SSE response until `until` sees a data payload it accepts; returns every payload read. */
async function readEvents(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  until: (message: Record<string, unknown>) => boolean,
): Promise<Array<Record<string, unknown>>> {
  const decoder = new TextDecoder();
  const messages: Array<Record<string, unknown>> = [];
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return messages;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const data = buffer
        .slice(0, end)
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice(6))
        .join('\n');
      buffer = buffer.slice(end + 2);
      if (!data) continue;
      const message = JSON.parse(data) as Record<string, unknown>;
      messages.push(message);
      if (until(message)) return messages;
    }
  }
}

describe('a long tool call', () => {
  it('leaves the server answering other requests while it runs', async () => {
    const order: string[] = [];
    const call = await postMcp(url, {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name: 'grep_files',
        arguments: { pattern: 'never-present', path: 'tree' },
        _meta: { progressToken: 'running' },
      },
    });
    const reader = (call.body as ReadableStream<Uint8Array>).getReader();
    // The first progress notification proves the call is running (rather than a pause that hopes it is).
    await readEvents(reader, (m) => m.method === 'notifications/progress');
    const grep = readEvents(reader, (m) => m.id === 1).then(() => order.push('grep'));
    const live = fetch(new URL('/health/live', url)).then(() => order.push('live'));
    await Promise.all([grep, live]);
    expect(order).toEqual(['live', 'grep']);
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM turns readiness off and refuses new work, lets the call in flight finish, then exits 0', async () => {
    expect((await fetch(new URL('/health/ready', url))).status).toBe(200);
    const call = await postMcp(url, {
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: {
        name: 'grep_files',
        arguments: { pattern: 'never-present', path: 'tree' },
        _meta: { progressToken: 'p' },
      },
    });
    expect(call.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = (call.body as ReadableStream<Uint8Array>).getReader();
    // The first progress notification proves the call is running.
    await readEvents(reader, (m) => m.method === 'notifications/progress');

    child.kill('SIGTERM');
    // It stops taking work in the step that logs this: wait for the process to take the signal, not a guess.
    await waitFor('the server takes SIGTERM', () => server.stdout().includes('"msg":"shutting down"'), 5_000);
    const ready = await fetch(new URL('/health/ready', url));
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'unavailable' });
    const refused = await postMcp(url, { jsonrpc: '2.0', id: 8, method: 'tools/list', params: {} });
    expect(refused.status).toBe(503);

    const rest = await readEvents(reader, (m) => m.id === 7);
    const result = rest.at(-1) as { id: number; result: { isError?: boolean; structuredContent?: unknown } };
    expect(result.id).toBe(7);
    expect(result.result.isError).toBeFalsy();
    expect(await exited).toBe(0);
    expect(server.stdout()).toContain('"msg":"shutting down"');
    // The audit log was flushed before exit, with the record of the call that finished during the drain.
    const file = path.join(base, 'data', 'audit', 'audit.jsonl');
    const records = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.at(-1)).toMatchObject({
      kind: 'tool_call',
      action: 'grep_files',
      target: 'tree',
      outcome: 'ok',
      actor: 'local',
    });
    expect((await verifyAuditLog(file)).ok).toBe(true);
  });
});
