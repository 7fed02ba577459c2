/**
 * Three Bastion processes sharing Redis behind nginx (round robin, no affinity), as in a scaled-out
 * deployment: both SDK generations work through the proxy, a conversation moves between instances, a Redis
 * restart takes every instance out of readiness and back without a restart of its own, and an instance
 * killed mid-run costs only clean, retryable failures: no wrong answer, no half-written file, no torn or
 * duplicated turn.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startCluster, type Cluster, type ClusterInstance } from '../support/cluster.js';

const NOTES = 'remember the milk\n';
/** Files the kill run reads, and files each converse attempt of the kill run reads (one per attempt). */
const READ_FILES = 10;
const TURN_FILES = 120;
const CALL_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 20_000;

let cluster: Cluster;
let requestSeq = 0;

beforeAll(async () => {
  cluster = await startCluster({ instances: 3 });
  const ws = cluster.workspace;
  writeFileSync(path.join(ws, 'notes.txt'), NOTES);
  for (let i = 0; i < READ_FILES; i++) writeFileSync(path.join(ws, `read-${i}.txt`), readText(i));
  mkdirSync(path.join(ws, 'turns'));
  for (let k = 0; k < TURN_FILES; k++) writeFileSync(path.join(ws, 'turns', `t${k}.txt`), turnText(k));
  mkdirSync(path.join(ws, 'out'));
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

const readText = (i: number) => `read file ${i}\n`.repeat(200);
const turnText = (k: number) => `turn file ${k}: ${'x'.repeat(k % 7)}\n`;
/** 48 KiB unlike any other written file, so a torn or swapped write shows. */
const writeText = (i: number) =>
  `${`write ${i} `.padEnd(64, String.fromCharCode(97 + (i % 26)))}\n`.repeat(768);

function nextRequestId(label: string): string {
  return `cluster-${label}-${++requestSeq}`;
}

/** A fetch for the SDK transports that names every request and records what each one was. */
function taggingFetch(sent: Array<{ id: string; method?: string }>, label: string) {
  return (url: string | URL, init?: RequestInit): Promise<Response> => {
    const id = nextRequestId(label);
    let method: string | undefined;
    if (typeof init?.body === 'string') {
      try {
        method = (JSON.parse(init.body) as { method?: string }).method;
      } catch {
        method = undefined;
      }
    }
    sent.push({ id, method });
    const headers = new Headers(init?.headers);
    headers.set('x-request-id', id);
    return fetch(url, { ...init, headers });
  };
}

async function instancesFor(ids: string[]): Promise<Array<ClusterInstance | undefined>> {
  return Promise.all(ids.map((id) => cluster.answeredBy(id)));
}

type Outcome =
  | { kind: 'answer'; status: number; message: RpcMessage; requestId: string }
  | { kind: 'http'; status: number; body: string; requestId: string }
  | { kind: 'connection'; error: string; requestId: string };

interface RpcMessage {
  result?: {
    isError?: boolean;
    content?: Array<{ type: string; text?: string }>;
    structuredContent?: Record<string, unknown>;
  };
  error?: { code: number; message: string };
}

/** One 2025-06-18 JSON-RPC POST through nginx; never throws: a refused or reset connection is an outcome. */
async function rpc(method: string, params: unknown, label: string): Promise<Outcome> {
  const requestId = nextRequestId(label);
  try {
    const response = await fetch(cluster.mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${cluster.key}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
        'x-request-id': requestId,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    const body = await response.text();
    if (response.status !== 200) return { kind: 'http', status: response.status, body, requestId };
    return { kind: 'answer', status: 200, message: parseRpc(body), requestId };
  } catch (error) {
    return { kind: 'connection', error: String((error as Error).cause ?? error), requestId };
  }
}

/** Plain JSON, or the last `data:` line of an event stream. */
function parseRpc(body: string): RpcMessage {
  const trimmed = body.trim();
  if (trimmed.startsWith('{')) return JSON.parse(trimmed) as RpcMessage;
  const data = trimmed
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .pop();
  return JSON.parse(data?.slice(5) ?? 'null') as RpcMessage;
}

const callTool = (name: string, args: Record<string, unknown>, label: string) =>
  rpc('tools/call', { name, arguments: args }, label);

function rest(method: string, route: string, body?: unknown, origin = cluster.origin): Promise<Response> {
  return fetch(`${origin}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${cluster.key}`,
      'x-request-id': nextRequestId('rest'),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
}

interface Turn {
  seq: number;
  prompt: string;
  answer: string;
  steps: Array<{ tool: string; outcome: string }>;
}

async function history(id: string): Promise<Turn[]> {
  const response = await rest('GET', `/v1/conversations/${id}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { turns: Turn[] }).turns;
}

function textOf(message: RpcMessage): string {
  const block = message.result?.content?.[0];
  return block?.type === 'text' ? (block.text ?? '') : '';
}

async function readiness(instance: ClusterInstance): Promise<number> {
  return fetch(`${instance.origin}/health/ready`, { signal: AbortSignal.timeout(5_000) })
    .then((response) => response.status)
    .catch(() => 0);
}

/** Polls /health/ready on the instance itself until it answers `status`; returns how long that took. */
async function untilReadiness(instance: ClusterInstance, status: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if ((await readiness(instance)) === status) return Date.now() - started;
    if (Date.now() - started > READY_TIMEOUT_MS)
      throw new Error(`instance ${instance.index} did not answer ${status} on /health/ready`);
    await sleep(100);
  }
}

describe('through nginx, with the SDK clients', () => {
  it('the SDK v2 and v1 clients list tools, write and read; the requests spread over the instances', async () => {
    const sent: Array<{ id: string; method?: string }> = [];
    const authorization = `Bearer ${cluster.key}`;
    const v2 = new ClientV2(
      { name: 'cluster-v2', version: '1.0.0' },
      { versionNegotiation: { mode: 'auto' } },
    );
    await v2.connect(
      new TransportV2(new URL(cluster.mcpUrl), {
        requestInit: { headers: { authorization } },
        fetch: taggingFetch(sent, 'v2'),
      }),
    );
    const v1 = new ClientV1({ name: 'cluster-v1', version: '1.0.0' });
    await v1.connect(
      new TransportV1(new URL(cluster.mcpUrl), {
        requestInit: { headers: { authorization } },
        fetch: taggingFetch(sent, 'v1'),
      }),
    );
    try {
      for (const [label, client] of [
        ['v2', v2],
        ['v1', v1],
      ] as const) {
        const { tools } = await client.listTools();
        expect(tools.map((tool) => tool.name)).toEqual(
          expect.arrayContaining(['converse', 'read_text_file', 'write_file']),
        );
        const content = `written by the SDK ${label} client through nginx\n`;
        const write = await client.callTool({
          name: 'write_file',
          arguments: { path: `sdk-${label}.txt`, content },
        });
        expect(write.isError).toBeFalsy();
        // Three reads in a row: round robin sends them to different instances, each sees the write.
        for (let i = 0; i < 3; i++) {
          const read = (await client.callTool({
            name: 'read_text_file',
            arguments: { path: `sdk-${label}.txt` },
          })) as { isError?: boolean; content: Array<{ type: string; text?: string }> };
          expect(read.isError).toBeFalsy();
          expect(read.content[0]).toEqual({ type: 'text', text: content });
        }
        expect(readFileSync(path.join(cluster.workspace, `sdk-${label}.txt`), 'utf8')).toBe(content);
      }
    } finally {
      await Promise.all([v2.close(), v1.close()]);
    }
    const calls = sent.filter((request) => request.method === 'tools/call');
    expect(calls.length).toBe(8);
    const served = await instancesFor(calls.map((call) => call.id));
    // Every call was answered by one of the instances (found in its request log), and not all by one.
    expect(served.every((instance) => instance !== undefined)).toBe(true);
    expect(new Set(served.map((instance) => instance?.index)).size).toBeGreaterThanOrEqual(2);
  }, 60_000);
});

describe('a conversation across instances', () => {
  it('continues a multi-turn conversation whose turns land on different instances', async () => {
    const prompts = ['read notes.txt', 'list files', 'read read-1.txt', 'read notes.txt', 'list files'];
    let conversationId: string | undefined;
    const ids: string[] = [];
    for (const prompt of prompts) {
      const outcome = await callTool(
        'converse',
        { prompt, ...(conversationId && { conversation_id: conversationId }) },
        'conv',
      );
      expect(outcome.kind).toBe('answer');
      if (outcome.kind !== 'answer') return;
      expect(outcome.message.result?.isError).toBeFalsy();
      const answer = outcome.message.result?.structuredContent as { conversation_id: string; answer: string };
      conversationId ??= answer.conversation_id;
      expect(answer.conversation_id).toBe(conversationId);
      if (prompt === 'read notes.txt') expect(answer.answer).toContain(NOTES.trim());
      if (prompt === 'list files') expect(answer.answer).toContain('notes.txt');
      ids.push(outcome.requestId);
    }
    const served = await instancesFor(ids);
    expect(served.every((instance) => instance !== undefined)).toBe(true);
    expect(new Set(served.map((instance) => instance?.index)).size).toBeGreaterThanOrEqual(2);

    const turns = await history(conversationId as string);
    expect(turns.map((turn) => [turn.seq, turn.prompt])).toEqual(prompts.map((prompt, i) => [i + 1, prompt]));
  }, 60_000);
});

describe('Redis restarted under the instances', () => {
  it('takes every instance out of readiness and back, and conversations fail with 503 meanwhile', async () => {
    const created = await rest('POST', '/v1/conversations', {});
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const first = await rest('POST', `/v1/conversations/${id}/messages`, { prompt: 'read notes.txt' });
    expect(first.status).toBe(200);
    for (const instance of cluster.instances) expect(await readiness(instance)).toBe(200);

    await cluster.redis.stop();
    try {
      await Promise.all(cluster.instances.map((instance) => untilReadiness(instance, 503)));
      const started = Date.now();
      const during = await rest('POST', `/v1/conversations/${id}/messages`, { prompt: 'list files' });
      const duringMs = Date.now() - started;
      const body = await during.text();
      // Recorded for the report: how a conversation request fares while Redis is down.
      process.stderr.write(
        `cluster: conversation turn during the Redis outage: HTTP ${during.status} in ${duringMs} ms: ${body}\n`,
      );
      expect(during.status).toBe(503);
      expect(during.headers.get('content-type')).toContain('application/problem+json');

      // Over MCP the same turn is a tool error the caller can act on; file tools do not need Redis.
      const converse = await callTool('converse', { prompt: 'list files', conversation_id: id }, 'outage');
      expect(converse.kind).toBe('answer');
      if (converse.kind !== 'answer') return;
      expect(converse.message.result?.isError).toBe(true);
      expect(textOf(converse.message)).toMatch(/unavailable/i);
      const read = await callTool('read_text_file', { path: 'notes.txt' }, 'outage');
      expect(read.kind === 'answer' && textOf(read.message)).toBe(NOTES);
    } finally {
      await cluster.redis.start();
    }
    const back = await Promise.all(cluster.instances.map((instance) => untilReadiness(instance, 200)));
    process.stderr.write(`cluster: ready again after Redis returned in ${back.join(', ')} ms\n`);
    for (const instance of cluster.instances) expect(instance.alive()).toBe(true);

    const after = await rest('POST', `/v1/conversations/${id}/messages`, { prompt: 'read read-2.txt' });
    expect(after.status).toBe(200);
    // The append-only file kept the turn from before the outage; the failed turn left nothing.
    const turns = await history(id);
    expect(turns.map((turn) => [turn.seq, turn.prompt])).toEqual([
      [1, 'read notes.txt'],
      [2, 'read read-2.txt'],
    ]);
  }, 90_000);
});

describe('an instance killed in the middle of a run', () => {
  const CALLS = 200;
  const CONVERSE_TURNS = 40;
  const WORKERS = 8;
  const KILL_AFTER = 70;
  const ATTEMPTS = 10;

  interface Attempt {
    job: string;
    requestId: string;
    outcome: 'ok' | 'retryable' | 'wrong';
    detail: string;
    afterKill: boolean;
  }

  it('answers or fails cleanly, and loses no write and no acknowledged turn', async () => {
    const created = await rest('POST', '/v1/conversations', {});
    expect(created.status).toBe(201);
    const { id: conversationId } = (await created.json()) as { id: string };

    const victim = cluster.instances[1] as ClusterInstance;
    const attempts: Attempt[] = [];
    let acknowledged = 0;
    let killed: Promise<void> | undefined;
    let dead = false;

    /** A retryable failure: nginx's JSON 503 (it answers 502/503/504 so), or a connection the client lost. */
    const retryable = (outcome: Outcome): string | undefined => {
      if (outcome.kind === 'connection') return `connection: ${outcome.error}`;
      if (outcome.kind === 'http' && outcome.status === 503 && outcome.body.includes('"unavailable"'))
        return 'nginx 503';
      return undefined;
    };

    const record = (job: string, outcome: Outcome, wrong: string | undefined, afterKill: boolean) => {
      const why = retryable(outcome);
      const entry: Attempt = {
        job,
        requestId: outcome.requestId,
        outcome: why ? 'retryable' : wrong ? 'wrong' : 'ok',
        detail: why ?? wrong ?? '',
        afterKill,
      };
      attempts.push(entry);
      if (entry.outcome === 'ok') {
        acknowledged++;
        if (!killed && acknowledged >= KILL_AFTER)
          killed = cluster.kill(victim).then(() => {
            dead = true;
          });
      }
      return entry.outcome !== 'retryable';
    };

    /** Runs one job until it is answered (right or wrong), retrying retryable failures with a short pause. */
    const run = async (job: string, attempt: (n: number) => Promise<[Outcome, string | undefined]>) => {
      for (let n = 0; n < ATTEMPTS; n++) {
        // Sent once the victim was gone: only the survivors can have answered it.
        const afterKill = dead;
        const [outcome, wrong] = await attempt(n);
        if (record(job, outcome, wrong, afterKill)) return;
        await sleep(200);
      }
      throw new Error(`${job}: still failing after ${ATTEMPTS} attempts`);
    };

    const check = (outcome: Outcome, expected: (message: RpcMessage) => string | undefined) => {
      if (outcome.kind === 'connection') return undefined;
      if (outcome.kind === 'http') return retryable(outcome) ? undefined : `HTTP ${outcome.status}`;
      if (outcome.message.error) return `JSON-RPC error ${outcome.message.error.code}`;
      if (outcome.message.result?.isError) return `tool error: ${textOf(outcome.message)}`;
      return expected(outcome.message);
    };

    // File calls: half writes of distinct files, half reads; the converse lane takes the rest.
    const fileJobs = Array.from({ length: CALLS - CONVERSE_TURNS }, (_, i) => i);
    const fileWorker = async () => {
      for (let i = fileJobs.shift(); i !== undefined; i = fileJobs.shift()) {
        const n = i;
        if (n % 2 === 0) {
          await run(`write ${n}`, async () => {
            const outcome = await callTool(
              'write_file',
              { path: `out/w-${n}.txt`, content: writeText(n) },
              'w',
            );
            return [outcome, check(outcome, () => undefined)];
          });
        } else {
          const file = n % READ_FILES;
          await run(`read ${n}`, async () => {
            const outcome = await callTool('read_text_file', { path: `read-${file}.txt` }, 'r');
            return [
              outcome,
              check(outcome, (m) => (textOf(m) === readText(file) ? undefined : 'wrong text')),
            ];
          });
        }
      }
    };

    // One conversation, one turn at a time, so its order is the order sent. Every attempt, a retry
    // included, reads its own file: a turn kept although its answer was lost is told apart from its retry.
    const sentPrompts: string[] = [];
    const acknowledgedPrompts: string[] = [];
    let turnFile = 0;
    const converseTurn = async (label: string) => {
      await run(label, async () => {
        const k = turnFile++;
        const prompt = `read turns/t${k}.txt`;
        sentPrompts.push(prompt);
        const outcome = await callTool('converse', { prompt, conversation_id: conversationId }, 'c');
        const wrong = check(outcome, (m) => {
          const answer = m.result?.structuredContent as { conversation_id?: string; answer?: string };
          if (answer?.conversation_id !== conversationId) return 'another conversation';
          return answer.answer?.includes(turnText(k).trim()) ? undefined : 'wrong answer';
        });
        if (outcome.kind === 'answer' && !wrong) acknowledgedPrompts.push(prompt);
        return [outcome, wrong];
      });
    };
    const converseLane = async () => {
      for (let t = 0; t < CONVERSE_TURNS; t++) await converseTurn(`turn ${t}`);
    };

    await Promise.all([converseLane(), ...Array.from({ length: WORKERS - 1 }, fileWorker)]);
    expect(killed).toBeDefined();
    await killed;
    expect(victim.alive()).toBe(false);

    const failures = attempts.filter((a) => a.outcome === 'retryable');
    process.stderr.write(
      `cluster: ${attempts.length} attempts for ${CALLS} calls, ${failures.length} retryable failures: ` +
        `${JSON.stringify(failures.map((f) => `${f.job}: ${f.detail}`))}\n`,
    );
    // Never a wrong answer; every call answered in the end.
    expect(attempts.filter((a) => a.outcome === 'wrong')).toEqual([]);
    expect(attempts.filter((a) => a.outcome === 'ok')).toHaveLength(CALLS);

    // The kill fell mid-run: the victim answered calls before it, and both survivors after it.
    const ok = attempts.filter((a) => a.outcome === 'ok');
    const before = await instancesFor(ok.filter((a) => !a.afterKill).map((a) => a.requestId));
    const after = await instancesFor(ok.filter((a) => a.afterKill).map((a) => a.requestId));
    expect(before).toContain(victim);
    expect(after.length).toBeGreaterThan(0);
    expect(after).not.toContain(victim);
    expect(new Set(after.map((instance) => instance?.index))).toEqual(
      new Set(cluster.instances.filter((i) => i !== victim).map((i) => i.index)),
    );

    // Every write landed whole: exactly the files written, each with exactly its content. Bastion's own
    // temp files (.bastion-tmp-*, never listed) may outlive a killed write; nothing else may.
    const out = path.join(cluster.workspace, 'out');
    const written = readdirSync(out).filter((name) => !name.startsWith('.bastion-tmp-'));
    const expected = Array.from({ length: CALLS - CONVERSE_TURNS }, (_, i) => i).filter((i) => i % 2 === 0);
    expect(written.sort()).toEqual(expected.map((i) => `w-${i}.txt`).sort());
    for (const i of expected) expect(readFileSync(path.join(out, `w-${i}.txt`), 'utf8')).toBe(writeText(i));

    // The conversation: numbered 1..n; every acknowledged turn exactly once; nothing but whole turns that
    // were sent, in the order sent.
    const turns = await history(conversationId);
    expect(turns.map((turn) => turn.seq)).toEqual(turns.map((_, i) => i + 1));
    const prompts = turns.map((turn) => turn.prompt);
    expect(new Set(prompts).size).toBe(prompts.length);
    for (const prompt of acknowledgedPrompts) expect(prompts).toContain(prompt);
    const positions = prompts.map((prompt) => sentPrompts.indexOf(prompt));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    for (const turn of turns) {
      const k = Number(/t(\d+)\.txt$/.exec(turn.prompt)?.[1]);
      expect(turn.answer).toContain(turnText(k).trim());
      expect(turn.steps).toEqual([expect.objectContaining({ tool: 'read_text_file', outcome: 'ok' })]);
    }

    // The conversation goes on, on the survivors.
    const more: string[] = [];
    for (let t = 0; t < 4; t++) {
      const k = turnFile++;
      const outcome = await callTool(
        'converse',
        { prompt: `read turns/t${k}.txt`, conversation_id: conversationId },
        'c',
      );
      expect(outcome.kind).toBe('answer');
      if (outcome.kind !== 'answer') return;
      expect(outcome.message.result?.isError).toBeFalsy();
      more.push(outcome.requestId);
    }
    const continuedOn = await instancesFor(more);
    expect(continuedOn).not.toContain(undefined);
    expect(continuedOn).not.toContain(victim);
    const final = await history(conversationId);
    expect(final.map((turn) => turn.seq)).toEqual(final.map((_, i) => i + 1));
    expect(final).toHaveLength(turns.length + 4);
  }, 240_000);
});
