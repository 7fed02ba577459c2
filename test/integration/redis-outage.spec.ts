/**
 * Redis going away under a running server, with conversations and rate-limit counters in Redis: requests
 * that need Redis answer 503 fast (never hang), readiness drops, the workspace tools keep working (rate
 * limits fail open), a turn in flight ends without a half-written turn or a lock held for ever, and Redis
 * coming back on the same port is picked up without restarting Bastion.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { HttpServer } from '../../src/main.js';
import { anthropicWire, FakeModelServer } from '../support/fake-model-server.js';
import { postMcp, startTestServer } from '../support/http-server.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const FAST_MS = 2_500;

let base: string;
let redis: RedisServer;
let fake: FakeModelServer;
let server: HttpServer;
let origin: string;

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-redis-outage-')));
  mkdirSync(path.join(base, 'ws'), { recursive: true });
  mkdirSync(path.join(base, 'redis'), { recursive: true });
  writeFileSync(path.join(base, 'ws/notes.txt'), 'remember the milk\n');
  // Persistent, so what was written before the outage is there after it.
  [redis, fake] = await Promise.all([
    startRedis({ dir: path.join(base, 'redis') }),
    FakeModelServer.start('anthropic'),
  ]);
  server = await startTestServer(path.join(base, 'ws'), {
    redis: { url: redis.url },
    conversations: { store: 'redis' },
    rateLimit: { storage: 'redis' },
    agent: {
      provider: 'anthropic',
      anthropic: { apiKey: 'sk-test', baseUrl: fake.baseUrl },
      resilience: { retries: 0 },
    },
  });
  origin = new URL(server.url).origin;
});

afterAll(async () => {
  await server?.close();
  await Promise.all([redis?.stop(), fake?.close()]);
  rmSync(base, { recursive: true, force: true });
});

function rest(method: string, route: string, body?: unknown): Promise<Response> {
  return fetch(`${origin}${route}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

async function startConversation(): Promise<string> {
  const response = await rest('POST', '/v1/conversations', {});
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

async function say(id: string, prompt: string): Promise<Response> {
  return rest('POST', `/v1/conversations/${id}/messages`, { prompt });
}

async function turnsOf(id: string): Promise<number> {
  const response = await rest('GET', `/v1/conversations/${id}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { turns: unknown[] }).turns.length;
}

async function callTool(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const response = await postMcp(server.url, {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name, arguments: args },
  });
  expect(response.status).toBe(200);
  const text = await response.text();
  // A JSON body, or one SSE event carrying it.
  const json = text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '');
  return (JSON.parse(json) as { result: Record<string, unknown> }).result;
}

async function readiness(): Promise<{ status: number; ms: number }> {
  const { value, ms } = await timed(() => rest('GET', '/health/ready'));
  return { status: value.status, ms };
}

/** Polls until Redis answers the server again (it reconnects on its own within a second or so). */
async function untilReady(deadlineMs = 10_000): Promise<number> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const { status } = await readiness();
    if (status === 200 || Date.now() > deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('while Redis is down', () => {
  let id: string;

  it('works before the outage', async () => {
    id = await startConversation();
    fake.enqueue(anthropicWire.text('first answer'));
    expect((await say(id, 'first prompt')).status).toBe(200);
    expect(await turnsOf(id)).toBe(1);
    expect((await readiness()).status).toBe(200);
  });

  it('answers conversation requests with a fast 503 problem and Retry-After, naming no host', async () => {
    await redis.stop();
    for (const [method, route, body] of [
      ['POST', '/v1/conversations', {}],
      ['GET', '/v1/conversations'],
      ['GET', `/v1/conversations/${id}`],
      ['POST', `/v1/conversations/${id}/messages`, { prompt: 'are you there?' }],
      ['DELETE', `/v1/conversations/${id}`],
    ] as const) {
      const { value: response, ms } = await timed(() => rest(method, route, body));
      expect({ route: `${method} ${route}`, status: response.status }).toEqual({
        route: `${method} ${route}`,
        status: 503,
      });
      expect(ms).toBeLessThan(FAST_MS);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(response.headers.get('retry-after')).toBe('5');
      const text = await response.text();
      expect(JSON.parse(text)).toMatchObject({
        status: 503,
        code: 'conversation_store_unavailable',
        detail: 'The conversation store is unavailable; retry shortly.',
      });
      expect(text).not.toContain(String(redis.port));
      expect(text).not.toMatch(/ECONNREFUSED|stack|at /);
    }
  });

  it('answers converse with an isError result the caller can act on, fast', async () => {
    const { value: result, ms } = await timed(() => callTool('converse', { prompt: 'hello' }));
    expect(ms).toBeLessThan(FAST_MS);
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain('The conversation store is unavailable; retry shortly.');
  });

  it('reports not ready within its one-second bound', async () => {
    const { status, ms } = await readiness();
    expect(status).toBe(503);
    expect(ms).toBeLessThan(1_500);
  });

  it('keeps serving the workspace tools: rate limits fail open without waiting', async () => {
    const { value: result, ms } = await timed(() => callTool('read_text_file', { path: 'notes.txt' }));
    expect(ms).toBeLessThan(FAST_MS);
    expect(result.isError).toBeFalsy();
    expect(JSON.stringify(result.content)).toContain('remember the milk');
  });

  it('is ready again and holds the same conversations once Redis is back, without a restart', async () => {
    await redis.start();
    expect(await untilReady()).toBe(200);
    expect(await turnsOf(id)).toBe(1);
    fake.enqueue(anthropicWire.text('second answer'));
    const response = await say(id, 'second prompt');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ conversation_id: id, answer: 'second answer' });
    expect(await turnsOf(id)).toBe(2);
  });
});

describe('a turn under way when Redis dies', () => {
  it('ends with a 503, stores no part of the turn, and leaves its lock to a lease', async () => {
    const id = await startConversation();
    // Redis goes away while the model thinks; the model answers once it has.
    let answer!: () => void;
    const thinking = new Promise<void>((resolve) => (answer = resolve));
    fake.enqueue({ ...anthropicWire.text('too late'), heldUntil: thinking });
    const asked = fake.requests.length;
    const pending = say(id, 'a slow prompt');
    await fake.until(() => fake.requests.length === asked + 1);
    await redis.stop();
    const { value: response, ms } = await timed(async () => {
      answer();
      return pending;
    });
    expect(response.status).toBe(503);
    expect(ms).toBeLessThan(FAST_MS);

    await redis.start();
    expect(await untilReady()).toBe(200);
    expect(await turnsOf(id)).toBe(0);
    // The release could not reach Redis: the lock is still there, but only for what is left of its lease.
    const direct = new Redis(redis.url, { lazyConnect: true });
    try {
      await direct.connect();
      const lease = await direct.pttl(`bastion:lock:${id}`);
      expect(lease).toBeGreaterThan(0);
      expect(lease).toBeLessThanOrEqual(30_000);
    } finally {
      direct.disconnect();
    }
  });
});
