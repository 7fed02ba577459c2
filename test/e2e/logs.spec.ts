import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KeyStore } from '../../src/auth/key-store.js';
import { spawnServer } from '../support/cli-server.js';
import { postMcp } from '../support/http-server.js';

const METRICS_TOKEN = 'scrape-9b1f0e77c4d2a6e8';
const CONTENT = 'file-content-never-logged-5521';

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  trace_id?: string;
  principal?: string;
  clientIp?: string;
  mcpMethod?: string;
  tool?: string;
  req?: { method: string; url: string; remoteAddress?: string };
  res?: { statusCode: number };
}

interface ExportedSpan {
  name: string;
  traceId: string;
}

let base: string;
let collector: Server;
const spans: ExportedSpan[] = [];
const key: Record<string, string> = {};
let stdout = '';
let lines: LogLine[] = [];
let exitCode: number | null;

/** An OTLP/HTTP collector that keeps the spans it is sent. */
function startCollector(): Promise<string> {
  collector = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const payload = JSON.parse(body) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: ExportedSpan[] }> }>;
      };
      for (const resource of payload.resourceSpans)
        for (const scope of resource.scopeSpans) spans.push(...scope.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) =>
    collector.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(collector.address() as AddressInfo).port}`),
    ),
  );
}

/** Serves, runs `work` against the server's /mcp URL, stops it with SIGTERM and collects its log lines. */
async function serveAndStop(work: (url: string) => Promise<void>): Promise<void> {
  const server = await spawnServer(path.join(base, 'ws'), path.join(base, 'data'), {
    BASTION_AUTH: 'api-key',
    BASTION_METRICS_TOKEN: METRICS_TOKEN,
    // One trusted hop: the address the proxy saw, whatever the client put in front of it.
    BASTION_TRUST_PROXY: '1',
    OTEL_EXPORTER_OTLP_ENDPOINT: await startCollector(),
  });
  try {
    await work(server.url);
  } finally {
    exitCode = await server.stop();
    stdout = server.stdout();
  }
}

beforeAll(async () => {
  base = mkdtempSync(path.join(os.tmpdir(), 'bastion-logs-'));
  mkdirSync(path.join(base, 'ws'));
  const keys = new KeyStore(path.join(base, 'data', 'keys.json'));
  key.writer = (await keys.create({ client: 'writer', scopes: ['files:read', 'files:write'] })).key;
  key.admin = (await keys.create({ client: 'ops', scopes: ['admin'] })).key;
  await serveAndStop(async (url) => {
    const writer = `Bearer ${key.writer}`;
    const call = (id: number, name: string, args: Record<string, unknown>) =>
      postMcp(url, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }, writer);
    expect((await call(1, 'write_file', { path: 'secret.txt', content: CONTENT })).status).toBe(200);
    expect((await call(2, 'read_text_file', { path: 'secret.txt' })).status).toBe(200);
    expect((await call(3, 'read_text_file', { path: '../outside.txt' })).status).toBe(200);
    const forged = `${(key.writer as string).slice(0, 17)}${'A'.repeat(43)}`;
    expect((await postMcp(url, { jsonrpc: '2.0', id: 4, method: 'ping' }, `Bearer ${forged}`)).status).toBe(
      401,
    );
    const metrics = await fetch(new URL('/metrics', url), {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(metrics.status).toBe(200);
    const diagnostics = await fetch(new URL('/diagnostics', url), {
      headers: {
        authorization: `Bearer ${key.admin}`,
        'x-request-id': 'ops-check-1',
        'x-forwarded-for': '198.51.100.9, 203.0.113.7',
      },
    });
    expect(diagnostics.status).toBe(200);
    expect((await fetch(new URL('/health/ready', url))).status).toBe(200);
  });
  lines = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as LogLine);
});

afterAll(() => {
  collector?.close();
  rmSync(base, { recursive: true, force: true });
});

/** Lines about the process itself rather than a request. */
const PROCESS_MESSAGES = new Set(['bastion serving', 'shutting down']);

describe('logs of an HTTP server', () => {
  it('are JSON lines on stdout, each about a request carrying its request id', () => {
    expect(exitCode).toBe(0);
    expect(lines.length).toBeGreaterThan(6);
    for (const line of lines) {
      if (PROCESS_MESSAGES.has(line.msg)) continue;
      expect(line.reqId).toMatch(/^[\w.:-]+$/);
    }
    expect(lines.filter((line) => line.req?.url.startsWith('/health/'))).toEqual([]);
    expect(lines.find((line) => line.reqId === 'ops-check-1')).toMatchObject({
      principal: 'ops',
      req: { method: 'GET', url: '/diagnostics' },
      res: { statusCode: 200 },
    });
  });

  it('name the client address the trusted proxy hop saw, beside the proxy itself', () => {
    expect(lines.find((line) => line.reqId === 'ops-check-1')).toMatchObject({
      clientIp: '203.0.113.7',
      req: { remoteAddress: '127.0.0.1' },
    });
    const direct = lines.find((line) => line.req?.url === '/mcp' && line.tool === 'write_file');
    expect(direct?.clientIp).toBe('127.0.0.1');
  });

  it('name the principal, the MCP method and the tool of each call', () => {
    const completed = lines.filter((line) => line.req?.url === '/mcp' && line.tool === 'write_file');
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      principal: 'writer',
      mcpMethod: 'tools/call',
      res: { statusCode: 200 },
    });
    const refused = lines.find((line) => line.msg === 'tool call refused');
    expect(refused).toMatchObject({ tool: 'read_text_file', reqId: expect.any(String) });
  });

  it('never carry a credential, a token or file content', () => {
    // The secret is everything after `bst_<id>_`: base64url, so it may hold underscores itself.
    const secret = (key.writer as string).split('_').slice(2).join('_');
    const secrets = [key.writer, key.admin, METRICS_TOKEN, CONTENT, secret];
    for (const secret of secrets) expect(stdout).not.toContain(secret as string);
    expect(stdout.toLowerCase()).not.toContain('bearer');
    expect(stdout).not.toContain('AAAAAAAAAAAAAAAAAAAA');
  });

  it('carry the trace id of the spans exported for the request', () => {
    const names = new Set(spans.map((span) => span.name));
    for (const name of ['POST /mcp', 'mcp tools/call', 'tool write_file']) expect(names).toContain(name);
    const refused = lines.find((line) => line.msg === 'tool call refused');
    const toolSpan = spans.find(
      (span) => span.name === 'tool read_text_file' && span.traceId === refused?.trace_id,
    );
    expect(toolSpan).toBeDefined();
  });
});
