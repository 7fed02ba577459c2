import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KeyStore } from '../../src/auth/key-store.js';
import type { DiagnosticsReport } from '../../src/health/diagnostics.js';
import type { HttpServer } from '../../src/main.js';
import { postMcp, startTestServer } from '../support/http-server.js';

const METRICS_TOKEN = 'scrape-token-7f3a9c2e5b1d4f60';
const REDIS_PASSWORD = 'redis-pw-c0ffee-5ecret';
const ORIGIN = 'https://inspector.example';

let base: string;
let server: HttpServer;
let url: string;
const key: Record<string, string> = {};

beforeAll(async () => {
  base = mkdtempSync(path.join(os.tmpdir(), 'bastion-ops-'));
  mkdirSync(path.join(base, 'ws'));
  writeFileSync(path.join(base, 'ws', 'notes.txt'), 'hello\n');
  const keys = new KeyStore(path.join(base, 'data', 'keys.json'));
  key.admin = (await keys.create({ client: 'ops', scopes: ['files:read', 'admin'] })).key;
  key.reader = (await keys.create({ client: 'reader', scopes: ['files:read'] })).key;
  server = await startTestServer(path.join(base, 'ws'), {
    auth: { mode: 'api-key' },
    dataDir: path.join(base, 'data'),
    server: { allowedOrigins: [ORIGIN] },
    metrics: { token: METRICS_TOKEN },
    // Configured but never connected to: diagnostics must mask it all the same.
    redis: { url: `redis://:${REDIS_PASSWORD}@127.0.0.1:1/0` },
  });
  url = server.url;
});

afterAll(async () => {
  await server?.close(100);
  rmSync(base, { recursive: true, force: true });
});

const bearer = (name: string) => ({ authorization: `Bearer ${key[name]}` });
const get = (route: string, headers: Record<string, string> = {}) => fetch(new URL(route, url), { headers });
const callTool = (name: string, args: Record<string, unknown>, id = 1) =>
  postMcp(
    url,
    { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } },
    `Bearer ${key.reader}`,
  );

describe('/metrics', () => {
  it('is readable with the scrape token or an admin key, and refused otherwise', async () => {
    expect((await get('/metrics')).status).toBe(401);
    expect((await get('/metrics', bearer('reader'))).status).toBe(403);
    expect((await get('/metrics', { authorization: 'Bearer wrong-token-0000000000' })).status).toBe(401);
    expect((await get('/metrics', bearer('admin'))).status).toBe(200);
    const scraped = await get('/metrics', { authorization: `Bearer ${METRICS_TOKEN}` });
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toMatch(/text\/plain/);
  });

  it('shows the tool-call series after a call, and every series is prefixed bastion_', async () => {
    expect((await callTool('read_text_file', { path: 'notes.txt' })).status).toBe(200);
    const text = await (await get('/metrics', { authorization: `Bearer ${METRICS_TOKEN}` })).text();
    expect(text).toMatch(/^bastion_tool_calls_total\{tool="read_text_file",outcome="ok"\} [1-9]/m);
    expect(text).toMatch(/^bastion_tool_duration_seconds_count\{tool="read_text_file",outcome="ok"\} [1-9]/m);
    expect(text).toMatch(
      /^bastion_http_request_duration_seconds_count\{route="\/mcp",method="POST",status="200"\}/m,
    );
    expect(text).toMatch(
      /^bastion_mcp_requests_total\{method="tools\/call",revision="2025-06-18",outcome="ok"\}/m,
    );
    expect(text).toMatch(/^bastion_auth_failures_total\{reason="missing"\} [1-9]/m);
    expect(text).toMatch(/^bastion_process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^bastion_in_flight_requests /m);
    const series = text.split('\n').filter((line) => line && !line.startsWith('#'));
    for (const line of series) expect(line).toMatch(/^bastion_/);
  });

  it('never puts a client-supplied value in a label', async () => {
    const hostile = 'zz-hostile-7731';
    await callTool('read_text_file', { path: `../../etc/${hostile}` });
    await callTool('read_text_file', { path: `${hostile}"}\n{evil` });
    await callTool('read_text_file', { path: `${hostile}/missing.txt` });
    await callTool(`${hostile}_tool`, {});
    await postMcp(url, { jsonrpc: '2.0', id: 3, method: `${hostile}/method` }, `Bearer ${key.reader}`);
    await get(`/${hostile}/probe?x=${hostile}`, bearer('reader'));
    await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': hostile,
        authorization: `Bearer ${key.reader}`,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'ping' }),
    });
    const text = await (await get('/metrics', { authorization: `Bearer ${METRICS_TOKEN}` })).text();
    expect(text).not.toContain(hostile);
    expect(text).not.toContain('etc/');
    expect(text).toMatch(/^bastion_sandbox_refusals_total\{reason="outside_workspace"\} [1-9]/m);
    expect(text).toMatch(/route="\(unmatched\)"/);
  });
});

describe('/diagnostics', () => {
  it('refuses a client without the admin scope', async () => {
    expect((await get('/diagnostics')).status).toBe(401);
    const refused = await get('/diagnostics', bearer('reader'));
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: 'insufficient_scope' });
  });

  it('reports version, uptime, build, checks, stores and in-flight requests, with every secret masked', async () => {
    const response = await get('/diagnostics', bearer('admin'));
    expect(response.status).toBe(200);
    const body = await response.text();
    const report = JSON.parse(body) as DiagnosticsReport;
    const checks = report.checks as Record<string, { status: string }>;
    const config = report.config as { metrics: { token: string }; redis: { url: string } };
    expect(report.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(report.uptimeSec).toBeGreaterThanOrEqual(0);
    expect(report.build.node).toBe(process.version);
    expect(report.state).toBe('ready');
    expect(report.inFlight).toBe(0);
    expect(checks.workspace?.status).toBe('up');
    expect(checks.redis?.status).toBe('down');
    expect(report.stores.rateLimit).toEqual({ kind: 'memory' });
    expect(config.metrics.token).toBe('[masked]');
    expect(config.redis.url).toBe('[masked]');
    expect(report.circuitBreakers).toEqual([]);
    for (const secret of [METRICS_TOKEN, REDIS_PASSWORD, key.admin, key.reader])
      expect(body).not.toContain(secret as string);
    expect(body).not.toContain((key.admin as string).split('_')[2]);
  });
});

describe('HTTP hardening', () => {
  it('sends security headers on every response, /mcp answers included', async () => {
    for (const response of [await get('/health/live'), await callTool('list_allowed_directories', {})]) {
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });

  it('echoes a plain x-request-id and replaces anything else with a new id', async () => {
    const echoed = await get('/health/live', { 'x-request-id': 'trace-abc.123' });
    expect(echoed.headers.get('x-request-id')).toBe('trace-abc.123');
    const replaced = await get('/health/live', { 'x-request-id': 'bad id <script>' });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const generated = await callTool('list_allowed_directories', {});
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers CORS preflight for an allowed origin with the MCP headers, and not for others', async () => {
    const preflight = (origin: string) =>
      fetch(url, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers':
            'authorization, content-type, mcp-protocol-version, mcp-session-id',
        },
      });
    const allowed = await preflight(ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(allowed.headers.get('access-control-allow-headers')).toContain('mcp-protocol-version');
    expect(allowed.headers.get('access-control-allow-headers')).toContain('mcp-session-id');
    const other = await preflight('https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();

    const answer = await fetch(url, {
      method: 'POST',
      headers: {
        origin: ORIGIN,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${key.reader}`,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(answer.headers.get('access-control-expose-headers')).toContain('mcp-session-id');
  });

  it('marks /mcp event streams unbuffered for proxies', async () => {
    const stream = await callTool('read_text_file', { path: 'notes.txt' });
    expect(stream.headers.get('content-type')).toMatch(/text\/event-stream|application\/json/);
    expect(stream.headers.get('x-accel-buffering')).toBe('no');
  });

  it('refuses oversized request headers with 431', async () => {
    const response = await get('/health/live', { 'x-padding': 'a'.repeat(20 * 1024) });
    expect(response.status).toBe(431);
  });
});

describe('OpenAPI', () => {
  it('describes the REST routes at /openapi.json, for authenticated clients only', async () => {
    const refused = await get('/openapi.json');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const document = (await (await get('/openapi.json', bearer('reader'))).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(document.openapi).toMatch(/^3\./);
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining(['/health/live', '/health/ready', '/diagnostics']),
    );
    expect(Object.keys(document.paths)).not.toContain('/mcp');
    const page = await get('/docs', bearer('reader'));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script src="./docs/swagger-ui-bundle.js">');
    expect(await (await get('/docs/', bearer('reader'))).text()).toContain('src="./swagger-ui-bundle.js"');
  });

  it('applies the route and DTO descriptions when the document is first built', async () => {
    const document = (await (await get('/openapi.json', bearer('reader'))).json()) as {
      paths: Record<string, Record<string, { summary?: string; tags?: string[] }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(document.paths['/v1/conversations']?.post).toMatchObject({
      summary: 'Start a conversation',
      tags: ['conversations'],
    });
    expect(Object.keys(document.components.schemas.AnswerDto?.properties ?? {})).toEqual(
      expect.arrayContaining(['conversation_id', 'answer', 'steps', 'usage']),
    );
    expect(Object.keys(document.paths)).not.toContain('/metrics');
  });

  it('serves the page and only the Swagger UI files it loads', async () => {
    const init = await get('/docs/swagger-ui-init.js', bearer('reader'));
    expect(init.headers.get('content-type')).toMatch(/^application\/javascript/);
    expect(await init.text()).toContain('"/diagnostics"');
    const bundle = await get('/docs/swagger-ui-bundle.js', bearer('reader'));
    expect(bundle.status).toBe(200);
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
    expect((await get('/docs/package.json', bearer('reader'))).status).toBe(404);
    expect((await get('/docs/swagger-ui-bundle.js')).status).toBe(401);
  });

  it('serves them without credentials when docs.public is set', async () => {
    const open = await startTestServer(path.join(base, 'ws'), {
      auth: { mode: 'api-key', keysFile: path.join(base, 'data', 'keys.json') },
      docs: { public: true },
    });
    try {
      expect((await fetch(new URL('/openapi.json', open.url))).status).toBe(200);
      expect((await fetch(new URL('/diagnostics', open.url))).status).toBe(401);
    } finally {
      await open.close(100);
    }
  });
});
