import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { KeyStore } from '../../src/auth/key-store.js';
import type { HttpServer } from '../../src/main.js';
import { RUNTIME, type Runtime } from '../../src/runtime.js';
import { postMcp, startTestServer } from '../support/http-server.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const ping = (id: number) => ({ jsonrpc: '2.0', id, method: 'ping' });

let base: string;
let keys: KeyStore;
const key: Record<string, string> = {};
const servers: HttpServer[] = [];

async function server(overrides: Record<string, unknown>): Promise<HttpServer> {
  const started = await startTestServer(path.join(base, 'ws'), {
    auth: { mode: 'api-key', keysFile: path.join(base, 'keys.json') },
    ...overrides,
  });
  servers.push(started);
  return started;
}

beforeAll(async () => {
  base = mkdtempSync(path.join(os.tmpdir(), 'bastion-limits-'));
  mkdirSync(path.join(base, 'ws'), { recursive: true });
  writeFileSync(path.join(base, 'ws', 'notes.txt'), 'nothing to see\n');
  keys = new KeyStore(path.join(base, 'keys.json'));
  for (const name of ['alice', 'bob', 'carol', 'dave'])
    key[name] = `Bearer ${(await keys.create({ client: name, scopes: ['files:read'], tier: 'small' })).key}`;
});

afterAll(async () => {
  for (const started of servers) await started.close(100);
  rmSync(base, { recursive: true, force: true });
});

async function expectLimited(response: Response, limit: RegExp): Promise<void> {
  expect(response.status).toBe(429);
  expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  const body = (await response.json()) as { jsonrpc: string; error: { code: number; message: string } };
  expect(body.jsonrpc).toBe('2.0');
  expect(body.error.code).toBe(-32600);
  expect(body.error.message).toMatch(limit);
}

describe('rate limits', () => {
  it('answer 429 with Retry-After and a JSON-RPC error once a principal passes its tier limit, per principal', async () => {
    const { url } = await server({
      rateLimit: {
        tiers: { default: { requests: 100, maxInFlight: 8 }, small: { requests: 3, maxInFlight: 8 } },
      },
    });
    for (let i = 0; i < 3; i++) {
      const allowed = await postMcp(url, ping(i), key.alice);
      expect(allowed.status).toBe(200);
      expect(allowed.headers.get('x-ratelimit-remaining-principal')).toBe(String(2 - i));
    }
    await expectLimited(await postMcp(url, ping(4), key.alice), /for this client/);
    // Another client of the same tier has its own counter.
    expect((await postMcp(url, ping(5), key.bob)).status).toBe(200);
  });

  it('count requests per IP address before authentication, so bad credentials count too', async () => {
    const { url } = await server({ rateLimit: { perIp: 4 } });
    for (let i = 0; i < 4; i++) expect((await postMcp(url, ping(i), 'Bearer bst_nope')).status).toBe(401);
    await expectLimited(await postMcp(url, ping(9), key.alice), /from this address/);
    // Health probes are never limited.
    expect((await fetch(new URL('/health/live', url))).status).toBe(200);
  });

  it('cap the requests one principal has in flight', async () => {
    const { url, app } = await server({
      rateLimit: {
        tiers: { default: { requests: 100, maxInFlight: 8 }, small: { requests: 100, maxInFlight: 1 } },
      },
    });
    const { watcher } = app.get<Runtime>(RUNTIME).surface;
    // A 2026-07-28 listen stream with a resource subscription stays open until the client closes it: it is
    // the one request carol has in flight for as long as the test holds it.
    const client = new Client({ name: 'carol', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: key.carol as string } },
      }),
    );
    try {
      const listen = await client.listen({ resourceSubscriptions: ['workspace:///notes.txt'] });
      expect(listen.honoredFilter.resourceSubscriptions).toEqual(['workspace:///notes.txt']);
      expect(watcher.watchedDirectories).toBe(1); // the stream is open on the server
      await expectLimited(await postMcp(url, ping(2), key.carol), /too many requests in flight/);
      expect((await postMcp(url, ping(3), key.dave)).status).toBe(200);
      await listen.close();
      // The server ends the stream, and gives its slot back, when it sees the connection close: the same
      // event stops the stream's watch, so once that has gone the slot has too.
      await untilServer(() => watcher.watchedDirectories === 0);
    } finally {
      await client.close();
    }
    expect((await postMcp(url, ping(4), key.carol)).status).toBe(200);
  });
});

/** Polls, on a short bounded deadline, until the server has handled what a client's socket just did. */
async function untilServer(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`the server did not react within ${timeoutMs} ms`);
    await sleep(5);
  }
}

describe('rate limits in Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const started of servers.splice(0)) await started.close(100);
    await redis?.stop();
  });

  it('share one counter between two instances using the same Redis', async () => {
    const shared = {
      redis: { url: redis.url },
      rateLimit: {
        storage: 'redis',
        tiers: { default: { requests: 100, maxInFlight: 8 }, small: { requests: 4, maxInFlight: 8 } },
      },
    };
    const a = await server(shared);
    const b = await server(shared);
    expect((await postMcp(a.url, ping(1), key.alice)).status).toBe(200);
    expect((await postMcp(b.url, ping(2), key.alice)).status).toBe(200);
    expect((await postMcp(a.url, ping(3), key.alice)).status).toBe(200);
    expect((await postMcp(b.url, ping(4), key.alice)).status).toBe(200);
    await expectLimited(await postMcp(a.url, ping(5), key.alice), /for this client/);
    await expectLimited(await postMcp(b.url, ping(6), key.alice), /for this client/);
    expect((await fetch(new URL('/health/ready', a.url))).status).toBe(200);
  });
});
