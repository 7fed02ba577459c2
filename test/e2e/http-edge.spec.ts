/**
 * The HTTP edge around the door, tried as an attacker would: DNS rebinding on every route, bodies sent
 * before credentials, batches against the limits, duplicate ids, malformed JSON on every route, and
 * listeners in other workspaces or without files:read.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { Scope } from '../../src/auth/principal.js';
import { KeyStore } from '../../src/auth/key-store.js';
import type { HttpServer } from '../../src/main.js';
import type { AuditRecord } from '../../src/observability/audit-record.js';
import { RUNTIME, type Runtime } from '../../src/runtime.js';
import { startTestServer } from '../support/http-server.js';

let base: string;
const key: Record<string, string> = {};
const servers: HttpServer[] = [];

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-edge-')));
  for (const dir of ['ws', 'other', 'data']) mkdirSync(path.join(base, dir));
  writeFileSync(path.join(base, 'ws/notes.txt'), 'shared notes\n');
  writeFileSync(path.join(base, 'other/notes.txt'), 'other notes\n');
  const keys = new KeyStore(path.join(base, 'data/keys.json'));
  const issue = async (name: string, scopes: Scope[], extra: Record<string, string> = {}) => {
    key[name] = (await keys.create({ client: name, scopes, ...extra })).key;
  };
  await issue('full', ['files:read', 'files:write', 'agent', 'admin']);
  await issue('reader', ['files:read']);
  await issue('writer', ['files:write']);
  await issue('elsewhere', ['files:read'], { workspace: path.join(base, 'other') });
  await issue('small', ['files:read', 'files:write', 'agent'], { tier: 'small' });
});

afterAll(async () => {
  for (const server of servers) await server.close(100);
  rmSync(base, { recursive: true, force: true });
});

async function start(overrides: Record<string, unknown> = {}): Promise<HttpServer> {
  const server = await startTestServer(path.join(base, 'ws'), {
    auth: { mode: 'api-key' },
    dataDir: path.join(base, 'data'),
    ...overrides,
  });
  servers.push(server);
  return server;
}

const MCP_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};

/** A request with headers fetch would not send as given (Host), answered with its status. */
function raw(url: string, route: string, headers: Record<string, string>, body?: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: hostname, port, path: route, method: body ? 'POST' : 'GET', headers },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const ROUTES: Array<[string, string | undefined]> = [
  ['/mcp', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })],
  ['/v1/conversations', '{}'],
  ['/v1/conversations', undefined],
  ['/diagnostics', undefined],
  ['/metrics', undefined],
  ['/docs', undefined],
  ['/openapi.json', undefined],
  ['/.well-known/oauth-protected-resource', undefined],
];

describe('DNS rebinding: a foreign Host or Origin is refused on every route', () => {
  for (const mode of ['none', 'api-key'] as const) {
    it(`in auth mode ${mode}, with or without a valid key, before anything else runs`, async () => {
      const server = await start({ auth: { mode }, ...(mode === 'none' && { dataDir: undefined }) });
      const port = new URL(server.url).port;
      const authorization: Record<string, string> =
        mode === 'api-key' ? { authorization: `Bearer ${key.full}` } : {};
      for (const [route, body] of ROUTES) {
        const local = { ...MCP_HEADERS, ...authorization, host: `127.0.0.1:${port}` };
        const answers = {
          host: await raw(server.url, route, { ...local, host: `evil.example:${port}` }, body),
          origin: await raw(server.url, route, { ...local, origin: 'http://evil.example' }, body),
          both: await raw(
            server.url,
            route,
            { ...local, host: 'evil.example', origin: 'http://evil.example' },
            body,
          ),
          plain: await raw(server.url, route, local, body),
        };
        expect({ route, ...answers, plain: answers.plain === 403 }).toEqual({
          route,
          host: 403,
          origin: 403,
          both: 403,
          plain: false,
        });
      }
      // Health probes answer whatever Host they name (a pod address), but never a foreign page.
      expect(await raw(server.url, '/health/live', { host: `10.0.0.7:${port}` })).toBe(200);
      expect(await raw(server.url, '/health/live', { origin: 'http://evil.example' })).toBe(403);
    });
  }
});

/** Sends the head of a request and `sent` bytes of its body; resolves with the answer once it comes. */
function partialBody(
  url: string,
  route: string,
  length: number,
  sent: number,
  authorization?: string,
  method = 'POST',
) {
  const { hostname, port } = new URL(url);
  return new Promise<{ head: string; closed: boolean; ms: number }>((resolve, reject) => {
    const started = Date.now();
    const socket = connect(Number(port), hostname);
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () =>
      resolve({ head: answer.split('\r\n')[0] ?? '', closed: true, ms: Date.now() - started }),
    );
    socket.write(
      `${method} ${route} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
        `Accept: application/json, text/event-stream\r\nContent-Length: ${length}\r\n` +
        (authorization ? `Authorization: ${authorization}\r\n` : '') +
        '\r\n',
    );
    socket.write(`[${'{},'.repeat(Math.floor(sent / 3))}`);
    // The rest of the body never comes: the answer must not wait for it.
  });
}

describe('bodies sent before credentials', () => {
  it('answers 401 and closes before reading a large body, and parses nothing', async () => {
    const server = await start();
    const runtime = server.app.get<Runtime>(RUNTIME);
    const before = runtime.metrics.registry.getSingleMetric('bastion_mcp_requests_total');
    expect(before).toBeDefined();
    const answer = await partialBody(server.url, '/mcp', 3_000_000, 64 * 1024);
    expect(answer.head).toBe('HTTP/1.1 401 Unauthorized');
    expect(answer.closed).toBe(true);
    expect(answer.ms).toBeLessThan(5_000);
    const wrongKey = await partialBody(server.url, '/v1/conversations', 3_000_000, 1024, 'Bearer bst_nope');
    expect(wrongKey.head).toBe('HTTP/1.1 401 Unauthorized');
  });

  it('refuses a body on a public route beyond a few KiB, before reading it', async () => {
    const server = await start();
    const answer = await partialBody(server.url, '/health/live', 1_000_000, 1024, undefined, 'GET');
    expect(answer.head).toBe('HTTP/1.1 413 Payload Too Large');
  });

  it('never waits on a trickled body without credentials: answered at once, the connection closed', async () => {
    const server = await start();
    for (const [route, method, head] of [
      ['/health/live', 'GET', 'HTTP/1.1 200 OK'],
      ['/nowhere', 'POST', 'HTTP/1.1 404 Not Found'],
      ['/mcp', 'POST', 'HTTP/1.1 401 Unauthorized'],
    ] as const) {
      const answer = await partialBody(server.url, route, 2_000, 30, undefined, method);
      expect({ route, head: answer.head, closed: answer.closed }).toEqual({ route, head, closed: true });
      expect(answer.ms).toBeLessThan(5_000);
    }
  });
});

async function mcp(url: string, body: unknown, who = 'small', extra: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...MCP_HEADERS, authorization: `Bearer ${key[who]}`, ...extra },
    body: JSON.stringify(body),
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

const call = (id: number, name: string, args: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args },
});

describe('limits count every call of a batch', () => {
  it('takes N units of the per-client limit for a batch of N calls', async () => {
    const server = await start({
      rateLimit: {
        tiers: { default: { requests: 100, maxInFlight: 32 }, small: { requests: 5, maxInFlight: 32 } },
      },
    });
    const batch = [1, 2, 3, 4].map((id) => ({ jsonrpc: '2.0', id, method: 'ping' }));
    const first = await mcp(server.url, batch, 'small', { 'mcp-protocol-version': '2025-03-26' });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-remaining-principal')).toBe('1');
    expect((await mcp(server.url, { jsonrpc: '2.0', id: 9, method: 'ping' })).status).toBe(200);
    const over = await mcp(server.url, { jsonrpc: '2.0', id: 10, method: 'ping' });
    expect(over.status).toBe(429);
  });

  it('refuses a batch that would pass the in-flight cap, recording each call it held, and runs none', async () => {
    const server = await start({
      rateLimit: {
        tiers: { default: { requests: 100, maxInFlight: 32 }, small: { requests: 100, maxInFlight: 3 } },
      },
    });
    const batch = [1, 2, 3, 4].map((id) => call(id, 'write_file', { path: `batch-${id}.txt`, content: 'x' }));
    const answer = await mcp(server.url, batch, 'small', {
      'mcp-protocol-version': '2025-03-26',
      'x-request-id': 'batch-over-cap',
    });
    expect(answer.status).toBe(429);
    expect(JSON.parse(answer.text).error.message).toMatch(/too many requests in flight/);
    expect(readdirSync(path.join(base, 'ws')).filter((f) => f.startsWith('batch-'))).toEqual([]);
    const runtime = server.app.get<Runtime>(RUNTIME);
    await runtime.audit.flush();
    const records = readFileSync(path.join(base, 'data/audit/audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as AuditRecord)
      .filter((r) => r.requestId === 'batch-over-cap');
    expect(records.map((r) => [r.action, r.outcome, r.code, r.target])).toEqual(
      [1, 2, 3, 4].map((id) => ['write_file', 'refused', 'rate_limited', `batch-${id}.txt`]),
    );
  });

  it('counts a REST turn in flight like an MCP call', async () => {
    const server = await start({
      rateLimit: {
        tiers: { default: { requests: 100, maxInFlight: 32 }, small: { requests: 100, maxInFlight: 1 } },
      },
    });
    const origin = new URL(server.url).origin;
    const auth = { authorization: `Bearer ${key.small}`, 'content-type': 'application/json' };
    const created = await fetch(`${origin}/v1/conversations`, { method: 'POST', headers: auth, body: '{}' });
    const { id } = (await created.json()) as { id: string };
    // A listen stream holds the one slot this client has; a turn meanwhile is refused.
    const client = new Client({ name: 'edge', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(server.url), {
        requestInit: { headers: { authorization: auth.authorization } },
      }),
    );
    const subscription = await client.listen({ resourceSubscriptions: ['workspace:///notes.txt'] });
    try {
      const turn = await fetch(`${origin}/v1/conversations/${id}/messages`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ prompt: 'list files' }),
      });
      expect(turn.status).toBe(429);
    } finally {
      await subscription.close();
      await client.close();
    }
    const after = await fetch(`${origin}/v1/conversations/${id}/messages`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ prompt: 'list files' }),
    });
    expect(after.status).toBe(200);
  });
});

describe('batches and malformed bodies', () => {
  it('refuses a batch that repeats an id, and runs none of it', async () => {
    const server = await start();
    const batch = [
      call(7, 'write_file', { path: 'dup-a.txt', content: 'a' }),
      call(7, 'write_file', { path: 'dup-b.txt', content: 'b' }),
    ];
    const answer = await mcp(server.url, batch, 'full', { 'mcp-protocol-version': '2025-03-26' });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error).toEqual({
      code: -32600,
      message: 'Invalid Request: a batch repeats a request id.',
    });
    expect(readdirSync(path.join(base, 'ws')).filter((f) => f.startsWith('dup-'))).toEqual([]);
  });

  it('answers malformed JSON with 400 in each route own shape, never a 500', async () => {
    const server = await start();
    const origin = new URL(server.url).origin;
    const send = (route: string) =>
      fetch(`${origin}${route}`, {
        method: 'POST',
        headers: { ...MCP_HEADERS, authorization: `Bearer ${key.full}` },
        body: '{"prompt": ',
      });
    const rest = await send('/v1/conversations');
    expect(rest.status).toBe(400);
    expect(rest.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await rest.json()).toMatchObject({ status: 400, code: 'invalid_json' });
    const mcpAnswer = await send('/mcp');
    expect(mcpAnswer.status).toBe(400);
    expect(((await mcpAnswer.json()) as { error: { code: number } }).error.code).toBe(-32700);
    const unknown = await send('/nowhere');
    expect(unknown.status).toBe(404);
  });
});

describe('resource updates reach only listeners that may read the file in their own workspace', () => {
  it('tells the reader of the shared file, not a key bound elsewhere nor one without files:read', async () => {
    const server = await start();
    const heard: Record<string, string[]> = {};
    const stops: Array<() => Promise<void>> = [];
    for (const who of ['reader', 'elsewhere', 'writer']) {
      heard[who] = [];
      const client = new Client({ name: who, version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(server.url), {
          requestInit: { headers: { authorization: `Bearer ${key[who]}` } },
        }),
      );
      client.setNotificationHandler(
        'notifications/resources/updated',
        (n) => void heard[who]?.push(n.params.uri),
      );
      const subscription = await client.listen({ resourceSubscriptions: ['workspace:///notes.txt'] });
      stops.push(async () => {
        await subscription.close();
        await client.close();
      });
    }
    try {
      writeFileSync(path.join(base, 'ws/notes.txt'), 'shared notes, changed\n');
      const started = Date.now();
      while (heard.reader?.length === 0 && Date.now() - started < 5_000)
        await new Promise((r) => setTimeout(r, 20));
      // The key bound to the other workspace watches its own notes.txt: a change there is its alone.
      writeFileSync(path.join(base, 'other/notes.txt'), 'other notes, changed\n');
      while (heard.elsewhere?.length === 0 && Date.now() - started < 5_000)
        await new Promise((r) => setTimeout(r, 20));
      // Rather than a pause for strays: the shared file changes again. The server tells the reader a change
      // event and a debounce after anything it sent, to any stream, about the first two.
      writeFileSync(path.join(base, 'ws/notes.txt'), 'shared notes, changed again\n');
      while (heard.reader?.length === 1 && Date.now() - started < 5_000)
        await new Promise((r) => setTimeout(r, 20));
      expect(heard).toEqual({
        reader: ['workspace:///notes.txt', 'workspace:///notes.txt'],
        elsewhere: ['workspace:///notes.txt'],
        writer: [],
      });
    } finally {
      for (const stop of stops) await stop();
    }
  });
});
