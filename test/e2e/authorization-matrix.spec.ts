import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
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

// Every principal kind against every MCP method that touches a workspace and every HTTP route, in several
// spellings, over real HTTP with real keys: allowed or refused, and exactly one audit record for each
// access to a file, allowed or refused.

type Who = 'nobody' | 'reader' | 'writer' | 'agent' | 'admin' | 'elsewhere';

const GRANTS: Record<Exclude<Who, 'nobody'>, Scope[]> = {
  reader: ['files:read'],
  writer: ['files:write'],
  agent: ['agent'],
  admin: ['admin'],
  // A full key, bound to another workspace: it holds every scope, but not over the shared files.
  elsewhere: ['files:read', 'files:write', 'agent', 'admin'],
};
const PRINCIPALS: Who[] = ['nobody', 'reader', 'writer', 'agent', 'admin', 'elsewhere'];

let base: string;
let server: HttpServer;
let runtime: Runtime;
const keys: Partial<Record<Who, string>> = {};
let sequence = 0;

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-matrix-')));
  for (const dir of ['shared', 'other', 'data']) mkdirSync(path.join(base, dir));
  writeFileSync(path.join(base, 'shared/notes.txt'), 'shared notes\nline two\n');
  writeFileSync(path.join(base, 'other/mine.txt'), 'the other workspace\n');
  const store = new KeyStore(path.join(base, 'data/keys.json'));
  for (const [who, scopes] of Object.entries(GRANTS)) {
    const spec = { client: who, scopes, ...(who === 'elsewhere' && { workspace: path.join(base, 'other') }) };
    keys[who as Who] = (await store.create(spec)).key;
  }
  server = await startTestServer(path.join(base, 'shared'), {
    auth: { mode: 'api-key' },
    dataDir: path.join(base, 'data'),
    rateLimit: { enabled: false },
  });
  runtime = server.app.get<Runtime>(RUNTIME);
});

afterAll(async () => {
  await server?.close();
  rmSync(base, { recursive: true, force: true });
});

function headers(who: Who, requestId: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'x-request-id': requestId,
    ...(keys[who] && { authorization: `Bearer ${keys[who]}` }),
    ...extra,
  };
}

/** One 2025-06-18 JSON-RPC request; resolves with the status, the body and the request id it carried. */
async function rpc(who: Who, method: string, params: unknown) {
  const requestId = `matrix-${++sequence}`;
  const response = await fetch(server.url, {
    method: 'POST',
    headers: headers(who, requestId, {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-06-18',
    }),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = (await response.json()) as { result?: Record<string, unknown>; error?: { message: string } };
  return { status: response.status, body, requestId };
}

async function auditRecords(): Promise<AuditRecord[]> {
  await runtime.audit.flush();
  return readFileSync(path.join(base, 'data/audit/audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditRecord);
}

interface Case {
  name: string;
  method: string;
  params: (who: Who) => unknown;
  /** The scopes that let a principal do it (over the shared workspace). */
  needs: Scope[];
  /** Whether the answer shows it was done (the door let it through), given a 200 answer. */
  allowed: (result: Record<string, unknown> | undefined, error: unknown) => boolean;
  /** Whether it touches a file (and so leaves an audit record). */
  file: boolean;
  /** What the key bound to another workspace gets: its own workspace, and catalogues, never the shared files. */
  elsewhere: boolean;
}

const nonEmpty = (value: unknown) => Array.isArray(value) && value.length > 0;

const CASES: Case[] = [
  {
    name: 'tools/call read_text_file',
    method: 'tools/call',
    params: () => ({ name: 'read_text_file', arguments: { path: 'notes.txt' } }),
    needs: ['files:read'],
    allowed: (r) => r !== undefined && !r.isError,
    file: true,
    elsewhere: false,
  },
  {
    name: 'tools/call write_file',
    method: 'tools/call',
    params: (who) => ({ name: 'write_file', arguments: { path: `by-${who}.txt`, content: 'x' } }),
    needs: ['files:write'],
    allowed: (r) => r !== undefined && !r.isError,
    file: true,
    elsewhere: true,
  },
  {
    name: 'tools/call edit_file dryRun',
    method: 'tools/call',
    params: () => ({
      name: 'edit_file',
      arguments: { path: 'notes.txt', edits: [{ oldText: 'line two', newText: 'line 2' }], dryRun: true },
    }),
    needs: ['files:read', 'files:write'],
    allowed: (r) => r !== undefined && !r.isError,
    file: true,
    elsewhere: false,
  },
  {
    name: 'resources/list',
    method: 'resources/list',
    params: () => ({}),
    needs: ['files:read'],
    // Allowed means the shared files were shown.
    allowed: (r) =>
      (r?.resources as Array<{ uri: string }> | undefined)?.some((e) => e.uri === 'workspace:///notes.txt') ??
      false,
    file: true,
    elsewhere: false,
  },
  {
    name: 'resources/read',
    method: 'resources/read',
    params: () => ({ uri: 'workspace:///notes.txt' }),
    needs: ['files:read'],
    allowed: (r) => nonEmpty(r?.contents),
    file: true,
    elsewhere: false,
  },
  {
    name: 'resources/templates/list',
    method: 'resources/templates/list',
    params: () => ({}),
    needs: ['files:read'],
    allowed: (r) => nonEmpty(r?.resourceTemplates),
    file: false,
    elsewhere: true,
  },
  {
    name: 'prompts/list',
    method: 'prompts/list',
    params: () => ({}),
    needs: ['files:read'],
    allowed: (r) => nonEmpty(r?.prompts),
    file: false,
    elsewhere: true,
  },
  {
    name: 'prompts/get review_file',
    method: 'prompts/get',
    params: () => ({ name: 'review_file', arguments: { path: 'notes.txt' } }),
    needs: ['files:read'],
    allowed: (r) => nonEmpty(r?.messages),
    file: true,
    elsewhere: false,
  },
  {
    name: 'completion/complete',
    method: 'completion/complete',
    params: () => ({
      ref: { type: 'ref/prompt', name: 'review_file' },
      argument: { name: 'path', value: 'no' },
    }),
    needs: ['files:read'],
    allowed: (r) => nonEmpty((r?.completion as { values?: unknown } | undefined)?.values),
    file: true,
    elsewhere: false,
  },
];

function expectedAllowed(who: Who, testCase: Case): boolean {
  if (who === 'nobody') return false;
  if (who === 'elsewhere') return testCase.elsewhere;
  return testCase.needs.every((scope) => GRANTS[who].includes(scope));
}

describe('authorization matrix: every principal kind against every MCP method', () => {
  for (const testCase of CASES) {
    it(`${testCase.name}: allowed exactly when the key holds ${testCase.needs.join(' + ')}, one audit record per file access`, async () => {
      const sent: Array<{ who: Who; requestId: string }> = [];
      for (const who of PRINCIPALS) {
        const { status, body, requestId } = await rpc(who, testCase.method, testCase.params(who));
        sent.push({ who, requestId });
        if (who === 'nobody') {
          expect(status).toBe(401);
          continue;
        }
        expect(status).toBe(200);
        const allowed = testCase.allowed(body.result, body.error);
        expect({ who, allowed }).toEqual({ who, allowed: expectedAllowed(who, testCase) });
      }
      const records = await auditRecords();
      for (const { who, requestId } of sent) {
        const mine = records.filter((record) => record.requestId === requestId);
        const expected = who === 'nobody' ? 1 : testCase.file ? 1 : 0;
        expect({ who, records: mine.length }).toEqual({ who, records: expected });
        if (who === 'nobody') expect(mine[0]).toMatchObject({ kind: 'auth_failure', outcome: 'denied' });
      }
    });
  }

  it('keeps a full key bound to another workspace in its own workspace', async () => {
    const own = await rpc('elsewhere', 'resources/read', { uri: 'workspace:///mine.txt' });
    expect(own.body.result?.contents).toEqual([
      { uri: 'workspace:///mine.txt', mimeType: 'text/plain', text: 'the other workspace\n' },
    ]);
    const escape = await rpc('elsewhere', 'resources/read', { uri: 'workspace:///../shared/notes.txt' });
    expect(escape.body.error?.message).toMatch(/outside the workspace/);
    const listed = await rpc('elsewhere', 'resources/list', {});
    const names = (listed.body.result?.resources as Array<{ name: string }>).map((r) => r.name);
    expect(names).toContain('mine.txt');
    expect(names).not.toContain('notes.txt');
  });

  it('writes nothing for a refused write: only the writer wrote', async () => {
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(path.join(base, 'shared')).filter((f) => f.startsWith('by-'))).toEqual([
      'by-writer.txt',
    ]);
  });

  it('subscriptions/listen: honours a resource only for a key that may read it, one audit record each', async () => {
    const honoured: Partial<Record<Who, string[] | undefined>> = {};
    for (const who of PRINCIPALS.filter((w) => w !== 'nobody')) {
      const client = new Client(
        { name: `matrix-${who}`, version: '1.0.0' },
        { versionNegotiation: { mode: 'auto' } },
      );
      const requestId = `listen-${who}`;
      await client.connect(
        new StreamableHTTPClientTransport(new URL(server.url), {
          requestInit: { headers: headers(who, requestId) },
        }),
      );
      const subscription = await client.listen({ resourceSubscriptions: ['workspace:///notes.txt'] });
      honoured[who] = subscription.honoredFilter.resourceSubscriptions;
      await subscription.close();
      await client.close();
    }
    expect(honoured).toEqual({
      reader: ['workspace:///notes.txt'],
      writer: undefined,
      agent: undefined,
      admin: undefined,
      // Its own workspace has no notes.txt: nothing to watch.
      elsewhere: undefined,
    });
    const records = await auditRecords();
    for (const who of PRINCIPALS.filter((w) => w !== 'nobody')) {
      const mine = records.filter(
        (r) => r.requestId === `listen-${who}` && r.action === 'resources/subscribe',
      );
      expect({ who, records: mine.length, outcome: mine[0]?.outcome }).toEqual({
        who,
        records: 1,
        outcome: who === 'reader' ? 'ok' : 'refused',
      });
    }
  });
});

interface Route {
  method: 'GET' | 'POST';
  spellings: string[];
  /** The status each principal gets, whatever the spelling. */
  status: Record<Who, number>;
  body?: unknown;
}

const allKeys = (ok: number, refused = 401): Record<Who, number> => ({
  nobody: refused,
  reader: ok,
  writer: ok,
  agent: ok,
  admin: ok,
  elsewhere: ok,
});

const ROUTES: Route[] = [
  {
    method: 'POST',
    spellings: ['/mcp', '/%6dcp', '/mcp/', '//mcp', '/MCP'],
    status: allKeys(200),
    body: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} },
  },
  {
    method: 'GET',
    spellings: [
      '/v1/conversations',
      '/v1/%63onversations',
      '/v1/conversations/',
      '/v1//conversations',
      '/V1/Conversations',
    ],
    status: { nobody: 401, reader: 403, writer: 403, agent: 200, admin: 403, elsewhere: 200 },
  },
  {
    method: 'GET',
    spellings: ['/diagnostics', '/%64iagnostics', '/diagnostics/', '//diagnostics', '/DIAGNOSTICS'],
    status: { nobody: 401, reader: 403, writer: 403, agent: 403, admin: 200, elsewhere: 200 },
  },
  {
    method: 'GET',
    spellings: ['/metrics', '/%6detrics', '/metrics/', '//metrics', '/Metrics'],
    status: { nobody: 401, reader: 403, writer: 403, agent: 403, admin: 200, elsewhere: 200 },
  },
  {
    method: 'GET',
    spellings: [
      '/openapi.json',
      '/%6fpenapi.json',
      '/openapi%2ejson',
      '/openapi.json/',
      '//openapi.json',
      '/OPENAPI.JSON',
    ],
    status: allKeys(200),
  },
  {
    method: 'GET',
    spellings: ['/docs', '/%64ocs', '/docs/', '//docs', '/Docs'],
    status: allKeys(200),
  },
  {
    method: 'GET',
    spellings: ['/health/live', '/health/%6cive', '/health/live/', '/health//live', '/HEALTH/LIVE'],
    status: allKeys(200, 200),
  },
];

describe('authorization matrix: every HTTP route, in every spelling', () => {
  for (const route of ROUTES) {
    it(`${route.method} ${route.spellings[0]}: the same answer in every spelling, refusals audited`, async () => {
      const refused: string[] = [];
      for (const spelling of route.spellings) {
        for (const who of PRINCIPALS) {
          const requestId = `route-${++sequence}`;
          // Concatenated, not resolved: `//mcp` must reach the server as a path, not as a host.
          const response = await fetch(`${new URL(server.url).origin}${spelling}`, {
            method: route.method,
            headers: headers(who, requestId, {
              'content-type': 'application/json',
              accept: 'application/json, text/event-stream',
              'mcp-protocol-version': '2025-06-18',
            }),
            ...(route.body !== undefined && { body: JSON.stringify(route.body) }),
          });
          await response.arrayBuffer();
          expect({ spelling, who, status: response.status }).toEqual({
            spelling,
            who,
            status: route.status[who],
          });
          if (response.status === 401 || response.status === 403) refused.push(requestId);
        }
      }
      const records = await auditRecords();
      for (const requestId of refused) {
        const mine = records.filter((r) => r.requestId === requestId);
        expect(mine).toEqual([expect.objectContaining({ kind: 'auth_failure', outcome: 'denied' })]);
      }
    });
  }
});
