/**
 * `bastion serve --workers 2` as operators run it: real processes sharing one port, the SQLite
 * conversation store and the audit chain, rate limits in a real redis-server. Each request below opens
 * its own connection, so the primary's round-robin spreads them over both workers.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KeyStore } from '../../src/auth/key-store.js';
import { verifyAuditLog } from '../../src/observability/audit-record.js';
import { spawnServer, type CliServer } from '../support/cli-server.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { alive } from '../support/processes.js';

const TURNS = 20;
const DIAGNOSTICS_CALLS = 12;
const TOOL_CALLS = 6;

let base: string;
let redis: RedisServer;
let server: CliServer;
let origin: string;
let key: string;

interface Reply {
  status: number;
  text: string;
}

/** One request on a connection of its own (no keep-alive), so consecutive requests reach different workers. */
function call(
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<Reply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${origin}${route}`,
      {
        method,
        agent: false,
        headers: {
          authorization: `Bearer ${key}`,
          ...(payload !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${route} timed out`)));
    req.end(payload);
  });
}

async function pidOf(timeoutMs?: number): Promise<number> {
  const reply = await call('GET', '/diagnostics', undefined, {}, timeoutMs);
  expect(reply.status).toBe(200);
  return (JSON.parse(reply.text) as { build: { pid: number } }).build.pid;
}

/** A sample's value in the exposition text, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-workers-')));
  mkdirSync(path.join(base, 'ws'), { recursive: true });
  for (let i = 1; i <= TURNS; i++)
    writeFileSync(path.join(base, `ws/note-${i}.txt`), `content of note ${i}\n`);
  key = (
    await new KeyStore(path.join(base, 'data/keys.json')).create({
      client: 'ops',
      scopes: ['files:read', 'files:write', 'agent', 'admin'],
    })
  ).key;
  redis = await startRedis();
  server = await spawnServer(path.join(base, 'ws'), path.join(base, 'data'), {
    BASTION_WORKERS: '2',
    BASTION_AUTH: 'api-key',
    BASTION_RATE_LIMIT_STORAGE: 'redis',
    BASTION_REDIS_URL: redis.url,
    BASTION_SHUTDOWN_GRACE_MS: '5000',
  });
  origin = new URL(server.url).origin;
}, 30_000);

afterAll(async () => {
  if (server?.child.exitCode === null) server.child.kill('SIGKILL');
  await redis?.stop();
  rmSync(base, { recursive: true, force: true });
});

describe('bastion serve --workers 2', () => {
  let pids: number[] = [];

  it('announces one URL once every worker serves, and both workers answer on it', async () => {
    expect(server.stderr()).toMatch(/serving MCP at http:\/\/127\.0\.0\.1:\d+\/mcp .*with 2 workers/);
    for (let i = 0; i < DIAGNOSTICS_CALLS; i++) pids.push(await pidOf());
    pids = [...new Set(pids)];
    expect(pids).toHaveLength(2);
    expect(pids).not.toContain(server.child.pid);
  });

  it('serves the whole group at /metrics, with the answering worker readiness', async () => {
    const tools = await Promise.all(
      Array.from({ length: TOOL_CALLS }, (_, i) =>
        call(
          'POST',
          '/mcp',
          {
            jsonrpc: '2.0',
            id: i,
            method: 'tools/call',
            params: { name: 'read_text_file', arguments: { path: `note-${i + 1}.txt` } },
          },
          { accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
        ),
      ),
    );
    for (const [i, reply] of tools.entries()) {
      expect(reply.status).toBe(200);
      expect(reply.text).toContain(`content of note ${i + 1}`);
    }
    const metrics = await call('GET', '/metrics');
    expect(metrics.status).toBe(200);
    // Both workers answered /diagnostics above, so only the group's sum reaches these totals.
    expect(
      sample(
        metrics.text,
        'bastion_http_request_duration_seconds_count{route="/diagnostics",method="GET",status="200"}',
      ),
    ).toBe(DIAGNOSTICS_CALLS);
    expect(sample(metrics.text, 'bastion_tool_calls_total{tool="read_text_file",outcome="ok"}')).toBe(
      TOOL_CALLS,
    );
    expect(metrics.text.match(/^bastion_ready /gm)).toHaveLength(1);
    expect(sample(metrics.text, 'bastion_ready')).toBe(1);
  });

  it(`keeps ${TURNS} concurrent turns on one conversation whole and in order across workers`, async () => {
    const created = await call('POST', '/v1/conversations', {});
    expect(created.status).toBe(201);
    const { id } = JSON.parse(created.text) as { id: string };
    const answers = await Promise.all(
      Array.from({ length: TURNS }, (_, i) =>
        call('POST', `/v1/conversations/${id}/messages`, { prompt: `read note-${i + 1}.txt` }),
      ),
    );
    for (const [i, reply] of answers.entries()) {
      expect(reply.status).toBe(200);
      expect((JSON.parse(reply.text) as { answer: string }).answer).toContain(`content of note ${i + 1}`);
    }
    const history = await call('GET', `/v1/conversations/${id}`);
    const { turns } = JSON.parse(history.text) as {
      turns: { seq: number; prompt: string; answer: string }[];
    };
    expect(turns.map((turn) => turn.seq)).toEqual(Array.from({ length: TURNS }, (_, i) => i + 1));
    expect(new Set(turns.map((turn) => turn.prompt)).size).toBe(TURNS);
    for (const turn of turns) {
      // Each stored turn is one prompt with its own answer: no turn took another's place or half of it.
      const n = /^read note-(\d+)\.txt$/.exec(turn.prompt)?.[1];
      expect(n).toBeDefined();
      expect(turn.answer).toContain(`content of note ${n}`);
    }
    // Turns were stored one at a time: each started after the previous one was stored.
    const times = turns.map((turn) => Date.parse((turn as unknown as { at: string }).at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('restarts a worker killed with SIGKILL while the other keeps answering', async () => {
    const [victim, survivor] = pids as [number, number];
    process.kill(victim, 'SIGKILL');
    // A replacement boots in about a second; on a loaded CI machine it can take many more.
    const deadline = Date.now() + 45_000;
    let replacement: number | undefined;
    // A connection the primary hands to the victim in the instant before it notices the death is never
    // answered (Node's round-robin handoff): its client waits for its own timeout. At most one here.
    let lost = 0;
    while (replacement === undefined && Date.now() < deadline) {
      const pid = await pidOf(5_000).catch((error: Error) => {
        if (!/timed out/.test(error.message)) throw error;
        lost += 1;
        return undefined;
      });
      if (pid === undefined) continue;
      expect([victim]).not.toContain(pid);
      if (pid !== survivor) replacement = pid;
      else await sleep(100);
    }
    expect(replacement).toBeDefined();
    expect(lost).toBeLessThanOrEqual(1);
    expect(alive(victim)).toBe(false);
    expect(server.child.exitCode).toBeNull();
    pids = [survivor, replacement as number];
    expect(server.stdout()).toContain('worker died: restarting it');
  }, 60_000);

  it('drains every worker on SIGTERM, exits 0, and leaves one intact audit chain', async () => {
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    const verdict = await verifyAuditLog(path.join(base, 'data/audit/audit.jsonl'));
    expect(verdict.ok).toBe(true);
    // Every tool call and every turn, from both workers, is in the one chain.
    const cli = spawnSync(process.execPath, [
      path.resolve('dist/cli.js'),
      'audit',
      'verify',
      path.join(base, 'data/audit/audit.jsonl'),
    ]);
    expect(cli.status).toBe(0);
    expect(cli.stdout.toString()).toMatch(/^ok: \d+ records, chain intact/);
    if (verdict.ok) expect(verdict.records).toBeGreaterThanOrEqual(TOOL_CALLS + TURNS);
  }, 30_000);
});

describe('bastion serve --workers refusals', () => {
  it('refuses in-memory rate limits with several workers, before forking, with exit code 2', () => {
    const result = spawnSync(
      process.execPath,
      [
        path.resolve('dist/cli.js'),
        'serve',
        '--workers',
        '2',
        '--port',
        '0',
        '--data-dir',
        path.join(base, 'd2'),
      ],
      { encoding: 'utf8', timeout: 15_000, cwd: base },
    );
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('Refusing to start 2 workers with rateLimit.storage=memory');
    expect(result.stderr).not.toContain('serving MCP');
  });

  it('names a bad worker count like any other setting', () => {
    const result = spawnSync(process.execPath, [path.resolve('dist/cli.js'), 'serve', '--workers', 'many'], {
      encoding: 'utf8',
      timeout: 15_000,
      cwd: base,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('server.workers');
  });
});
