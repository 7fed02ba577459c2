/**
 * Bastion in front of real MCP servers: the reference memory and everything servers as stdio children and a
 * Streamable HTTP upstream, reached through Bastion by the official SDK client over real sockets, for both
 * protocol eras, over stdio, and through the SecureAgent driving a scripted model.
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, StreamableHTTPClientTransport, type Transport } from '@modelcontextprotocol/client';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { ConverseAnswer } from '../../src/agent/agent.service.js';
import { KeyStore } from '../../src/auth/key-store.js';
import type { HttpServer } from '../../src/main.js';
import { startTestServer } from '../support/http-server.js';
import { FakeModelServer } from '../support/fake-model-server.js';
import { TestUpstream } from '../support/upstream-server.js';
import { childrenOf, waitFor } from '../support/processes.js';

const CLI = path.resolve('dist/cli.js');
const MEMORY_JS = path.resolve('node_modules/@modelcontextprotocol/server-memory/dist/index.js');
const EVERYTHING_JS = path.resolve('node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const HOSTILE_JS = path.resolve('test/support/hostile-upstream.mjs');
const UPSTREAM_SECRET = 'upstream-secret';
/** Given to the memory upstream's process only. */
const MEMORY_ONLY_SECRET = 'memory-only-secret-5b2e91';
/** Bastion's own environment: no upstream may inherit it. */
const PARENT_SECRETS = {
  BASTION_TEST_PARENT_SECRET: 'bastion-parent-secret-a7c3',
  ANTHROPIC_API_KEY: 'sk-ant-parent-key-e41f0d',
};
/** The caller's own headers: none may reach an upstream. */
const CALLER = {
  cookie: 'bastion_session=caller-cookie-77d2',
  xApiKey: 'caller-x-api-key-19af',
  marker: 'caller-marker-c3d8',
  sessionId: 'caller-session-id-5e60',
};

type Result = {
  content: Array<{ type: string; text?: string }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
};
type ListedTool = Awaited<ReturnType<Client['listTools']>>['tools'][number];

function tmpDir(prefix: string): string {
  return realpathSync(mkdtempSync(path.join(os.tmpdir(), prefix)));
}

async function toolNames(client: Client): Promise<string[]> {
  return (await client.listTools(undefined, { cacheMode: 'bypass' })).tools.map((t) => t.name);
}

/** Lists the tools of an upstream directly, as Bastion's own client sees them. */
async function listDirectly(transport: Transport): Promise<ListedTool[]> {
  const client = new Client({ name: 'direct', version: '1.0.0' });
  await client.connect(transport);
  try {
    return (await client.listTools(undefined, { cacheMode: 'bypass' })).tools;
  } finally {
    await client.close();
  }
}

describe('an HTTP server in front of stdio and HTTP upstreams', () => {
  let base: string;
  let memoryFile: string;
  let web: TestUpstream;
  let server: HttpServer;
  const key: Record<string, string> = {};
  const direct: Record<'memory' | 'everything' | 'web', ListedTool[]> = {
    memory: [],
    everything: [],
    web: [],
  };
  const savedEnv: Record<string, string | undefined> = {};

  const connect = async (
    apiKey: string,
    options: ConstructorParameters<typeof Client>[1] = {},
    headers: Record<string, string> = {},
  ): Promise<Client> => {
    const client = new Client({ name: 'upstreams-e2e', version: '1.0.0' }, options);
    await client.connect(
      new StreamableHTTPClientTransport(new URL(server.url), {
        requestInit: { headers: { authorization: `Bearer ${apiKey}`, ...headers } },
      }),
    );
    return client;
  };
  const call = async (client: Client, name: string, args: Record<string, unknown> = {}) =>
    (await client.callTool({ name, arguments: args })) as Result;
  const admin = (route: string) =>
    fetch(new URL(route, server.url), { headers: { authorization: `Bearer ${key.admin}` } });

  beforeAll(async () => {
    for (const [name, value] of Object.entries(PARENT_SECRETS)) {
      savedEnv[name] = process.env[name];
      process.env[name] = value;
    }
    base = tmpDir('bastion-upstreams-');
    mkdirSync(path.join(base, 'ws'));
    memoryFile = path.join(base, 'memory.jsonl');
    const keys = new KeyStore(path.join(base, 'data/keys.json'));
    const issue = async (name: string, scopes: Parameters<KeyStore['create']>[0]['scopes']) => {
      key[name] = (await keys.create({ client: name, scopes })).key;
    };
    await issue('all', ['files:read', 'upstream:memory', 'upstream:everything', 'upstream:web']);
    await issue('reader', ['files:read']);
    await issue('memoryOnly', ['files:read', 'upstream:memory']);
    await issue('admin', ['admin']);
    web = await TestUpstream.start();
    const [memoryTools, everythingTools, webTools] = await Promise.all([
      listDirectly(
        new StdioClientTransport({
          command: process.execPath,
          args: [MEMORY_JS],
          env: { MEMORY_FILE_PATH: path.join(base, 'direct-memory.jsonl') },
          stderr: 'pipe',
        }),
      ),
      listDirectly(
        new StdioClientTransport({
          command: process.execPath,
          args: [EVERYTHING_JS, 'stdio'],
          stderr: 'pipe',
        }),
      ),
      listDirectly(
        new StreamableHTTPClientTransport(new URL(web.url), {
          requestInit: { headers: { Authorization: `Bearer ${UPSTREAM_SECRET}` } },
        }),
      ),
    ]);
    Object.assign(direct, { memory: memoryTools, everything: everythingTools, web: webTools });
    server = await startTestServer(path.join(base, 'ws'), {
      auth: { mode: 'api-key' },
      dataDir: path.join(base, 'data'),
      audit: { enabled: false },
      upstreams: {
        memory: {
          command: process.execPath,
          args: [MEMORY_JS],
          env: { MEMORY_FILE_PATH: memoryFile, MEMORY_ONLY_SECRET },
        },
        everything: {
          command: process.execPath,
          args: [EVERYTHING_JS, 'stdio'],
          env: { EVERYTHING_MARK: 'everything-own-value' },
        },
        web: { type: 'http', url: web.url, headers: { Authorization: `Bearer ${UPSTREAM_SECRET}` } },
      },
    });
    const client = await connect(key.all as string);
    try {
      await waitFor('the upstream tools are listed', async () => {
        const names = await toolNames(client);
        return ['memory_read_graph', 'everything_echo', 'web_echo'].every((n) => names.includes(n));
      });
    } finally {
      await client.close();
    }
  });

  afterAll(async () => {
    await server?.close(100);
    await web?.close();
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    rmSync(base, { recursive: true, force: true });
  });

  describe.each([
    ['2025 revisions (legacy initialize)', {}, undefined, false],
    ['2026-07-28', { versionNegotiation: { mode: 'auto' as const } }, '2026-07-28', true],
  ])('%s', (label, options, version, listChanged) => {
    let client: Client;
    beforeAll(async () => {
      client = await connect(key.all as string, options);
      if (version) expect(client.getNegotiatedProtocolVersion()).toBe(version);
    });
    afterAll(async () => {
      await client?.close();
    });

    it('declares tools.listChanged only where the transport can deliver it', () => {
      expect(Boolean(client.getServerCapabilities()?.tools?.listChanged)).toBe(listChanged);
    });

    it("lists every upstream tool, prefixed, with the upstream's own schemas and annotations", async () => {
      const { tools } = await client.listTools(undefined, { cacheMode: 'bypass' });
      const byName = new Map(tools.map((t) => [t.name, t]));
      for (const [prefix, listed] of [
        ['memory_', direct.memory],
        ['everything_', direct.everything],
        ['web_', direct.web],
      ] as const) {
        expect(listed.length).toBeGreaterThan(0);
        expect(
          tools
            .filter((t) => t.name.startsWith(prefix))
            .map((t) => t.name)
            .sort(),
        ).toEqual(listed.map((t) => `${prefix}${t.name}`).sort());
        for (const own of listed) {
          const offered = byName.get(`${prefix}${own.name}`) as ListedTool;
          expect(offered.inputSchema).toEqual(own.inputSchema);
          expect(offered.outputSchema).toEqual(own.outputSchema);
          expect(offered.description).toBe(own.description);
          expect(offered.annotations).toMatchObject({
            readOnlyHint: own.annotations?.readOnlyHint ?? false,
            destructiveHint: own.annotations?.destructiveHint ?? true,
            idempotentHint: own.annotations?.idempotentHint ?? false,
            openWorldHint: own.annotations?.openWorldHint ?? true,
          });
        }
      }
      expect(byName.get('memory_create_entities')?.annotations).toMatchObject({
        readOnlyHint: false,
        destructiveHint: false,
      });
      expect(byName.get('memory_read_graph')?.annotations).toMatchObject({ readOnlyHint: true });
      expect(byName.get('everything_get-sum')?.inputSchema).toMatchObject({
        properties: { a: { type: 'number' }, b: { type: 'number' } },
      });
      // web's echo gives only readOnlyHint: the rest take the protocol's defaults.
      expect(byName.get('web_echo')?.annotations).toMatchObject({ readOnlyHint: true, openWorldHint: true });
      expect(byName.get('read_text_file')).toBeDefined();
    });

    it('calls each upstream and returns its results', async () => {
      const entity = `Entity ${version ?? 'legacy'}`;
      const created = await call(client, 'memory_create_entities', {
        entities: [{ name: entity, entityType: 'test', observations: [`seen over ${label}`] }],
      });
      expect(created.isError).toBeFalsy();
      expect(created.structuredContent).toEqual({
        entities: [{ name: entity, entityType: 'test', observations: [`seen over ${label}`] }],
      });
      const graph = await call(client, 'memory_read_graph');
      expect(graph.isError).toBeFalsy();
      expect(graph.structuredContent?.entities).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: entity })]),
      );
      expect(readFileSync(memoryFile, 'utf8')).toContain(entity);

      const echo = await call(client, 'everything_echo', { message: `hello ${label}` });
      expect(echo.content).toEqual([{ type: 'text', text: `Echo: hello ${label}` }]);
      const sum = await call(client, 'everything_get-sum', { a: 2, b: 40 });
      expect(sum.content[0]?.text).toContain('42');

      const before = web.calls.echo ?? 0;
      const webEcho = await call(client, 'web_echo', { text: 'over http' });
      expect(webEcho.content).toEqual([{ type: 'text', text: 'over http' }]);
      expect(web.calls.echo).toBe(before + 1);
    });

    it("checks arguments against the upstream's schema before forwarding them", async () => {
      const before = web.calls.echo ?? 0;
      await expect(client.callTool({ name: 'web_echo', arguments: { text: 42 } })).rejects.toMatchObject({
        code: -32602,
      });
      expect(web.calls.echo ?? 0).toBe(before);
    });
  });

  it('keeps upstream tools from a key without their scope, naming the scope when refusing', async () => {
    const client = await connect(key.reader as string);
    try {
      const names = await toolNames(client);
      expect(names).toContain('read_text_file');
      expect(names.filter((n) => /^(memory|web|everything)_/.test(n))).toEqual([]);
      const before = readFileSync(memoryFile, 'utf8');
      const refused = await call(client, 'memory_read_graph');
      expect(refused.isError).toBe(true);
      expect(refused.content[0]?.text).toMatch(/upstream:memory/);
      const write = await call(client, 'memory_create_entities', {
        entities: [{ name: 'Intruder', entityType: 'x', observations: [] }],
      });
      expect(write.isError).toBe(true);
      expect(readFileSync(memoryFile, 'utf8')).toBe(before);
      const webBefore = web.calls.echo ?? 0;
      const webRefused = await call(client, 'web_echo', { text: 'no' });
      expect(webRefused.isError).toBe(true);
      expect(webRefused.content[0]?.text).toMatch(/upstream:web/);
      expect(web.calls.echo ?? 0).toBe(webBefore);
    } finally {
      await client.close();
    }
  });

  it("shows a key only the upstreams its scopes name: upstream:memory opens memory, not web's", async () => {
    const client = await connect(key.memoryOnly as string);
    try {
      const names = await toolNames(client);
      expect(names).toEqual(expect.arrayContaining(['memory_read_graph', 'memory_create_entities']));
      expect(names.filter((n) => /^(web|everything)_/.test(n))).toEqual([]);
      expect((await call(client, 'memory_read_graph')).isError).toBeFalsy();
      const refused = await call(client, 'web_echo', { text: 'no' });
      expect(refused.isError).toBe(true);
      expect(refused.content[0]?.text).toMatch(/upstream:web/);
    } finally {
      await client.close();
    }
  });

  it("sends the upstream only its configured credentials, never the caller's", async () => {
    const callerHeaders = {
      cookie: CALLER.cookie,
      'x-api-key': CALLER.xApiKey,
      'x-caller-marker': CALLER.marker,
      'x-forwarded-for': '203.0.113.7',
    };
    const echoesBefore = web.calls.echo ?? 0;
    const client = await connect(key.all as string, {}, callerHeaders);
    try {
      expect((await call(client, 'web_echo', { text: 'one' })).isError).toBeFalsy();
      expect((await call(client, 'web_echo', { text: 'two' })).isError).toBeFalsy();
    } finally {
      await client.close();
    }
    const raw = await fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
        authorization: `Bearer ${key.all}`,
        'mcp-session-id': CALLER.sessionId,
        ...callerHeaders,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'web_echo', arguments: { text: 'raw' } },
      }),
    });
    expect(raw.status).toBe(200);
    expect(await raw.text()).toContain('raw');
    expect(web.calls.echo).toBe(echoesBefore + 3);

    expect(web.requests.length).toBeGreaterThan(0);
    const callerValues = [
      ...Object.values(key),
      ...Object.values(key).map((k) => k.slice('bst_000000000000_'.length)),
      ...Object.values(CALLER),
      '203.0.113.7',
    ];
    for (const request of web.requests) {
      expect(request.headers.authorization).toBe(`Bearer ${UPSTREAM_SECRET}`);
      for (const name of ['cookie', 'x-api-key', 'x-caller-marker', 'x-forwarded-for'])
        expect(request.headers[name]).toBeUndefined();
      const seen = JSON.stringify(request.headers);
      for (const value of callerValues)
        expect({ value, seen: seen.includes(value) }).toEqual({ value, seen: false });
    }
  });

  it("starts stdio upstreams with a minimal environment plus their own, none of Bastion's", async () => {
    const client = await connect(key.all as string);
    let env: Record<string, string>;
    try {
      const result = await call(client, 'everything_get-env');
      expect(result.isError).toBeFalsy();
      env = JSON.parse(result.content[0]?.text as string) as Record<string, string>;
    } finally {
      await client.close();
    }
    expect(env.EVERYTHING_MARK).toBe('everything-own-value');
    expect(env.MEMORY_ONLY_SECRET).toBeUndefined();
    expect(Object.keys(env).filter((name) => name.startsWith('BASTION_'))).toEqual([]);
    expect(env.ANTHROPIC_API_KEY).toBeUndefined();
    expect(env.JEST_WORKER_ID).toBeUndefined();
    const allowed = new Set([...Object.keys(getDefaultEnvironment()), 'EVERYTHING_MARK']);
    expect(Object.keys(env).filter((name) => !allowed.has(name))).toEqual([]);
    const text = JSON.stringify(env);
    for (const secret of [...Object.values(PARENT_SECRETS), MEMORY_ONLY_SECRET, UPSTREAM_SECRET])
      expect(text).not.toContain(secret);
  });

  it('reports upstream health and calls in /metrics', async () => {
    const client = await connect(key.all as string);
    try {
      await call(client, 'memory_read_graph');
      await call(client, 'web_echo', { text: 'metrics' });
    } finally {
      await client.close();
    }
    const response = await admin('/metrics');
    expect(response.status).toBe(200);
    const text = await response.text();
    for (const name of ['memory', 'everything', 'web']) {
      expect(text).toMatch(new RegExp(`^bastion_upstream_up\\{upstream="${name}"\\} 1$`, 'm'));
      expect(text).toMatch(new RegExp(`^bastion_upstream_tools\\{upstream="${name}"\\} [1-9]`, 'm'));
      expect(text).not.toMatch(new RegExp(`^bastion_upstream_circuit_open\\{upstream="${name}"\\} 1$`, 'm'));
    }
    expect(text).toMatch(/^bastion_upstream_calls_total\{upstream="memory",outcome="ok"\} [1-9]/m);
    expect(text).toMatch(/^bastion_upstream_calls_total\{upstream="web",outcome="ok"\} [1-9]/m);
    expect(text).toMatch(/^bastion_upstream_call_duration_seconds_count\{upstream="memory"\} [1-9]/m);
    expect(text).not.toContain(UPSTREAM_SECRET);
  });

  it('lists each upstream in /diagnostics, with no header or env secret in the report', async () => {
    const response = await admin('/diagnostics');
    expect(response.status).toBe(200);
    const body = await response.text();
    const report = JSON.parse(body) as { upstreams?: Array<Record<string, unknown>> };
    expect(report.upstreams).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          name: 'memory',
          type: 'stdio',
          state: 'up',
          circuit: 'closed',
          scope: 'upstream:memory',
          tools: expect.arrayContaining(['memory_read_graph', 'memory_create_entities']),
          server: expect.objectContaining({ name: 'memory-server' }),
          pid: expect.any(Number),
        }),
        expect.objectContaining({
          name: 'everything',
          type: 'stdio',
          state: 'up',
          tools: expect.arrayContaining(['everything_echo', 'everything_get-env']),
        }),
        expect.objectContaining({
          name: 'web',
          type: 'http',
          state: 'up',
          circuit: 'closed',
          scope: 'upstream:web',
          tools: expect.arrayContaining(['web_echo']),
          server: expect.objectContaining({ name: 'test-upstream' }),
        }),
      ]),
    );
    expect(report.upstreams).toHaveLength(3);
    for (const secret of [UPSTREAM_SECRET, MEMORY_ONLY_SECRET, ...Object.values(PARENT_SECRETS)])
      expect({ secret, shown: body.includes(secret) }).toEqual({ secret, shown: false });
  });
});

describe('bastion stdio with an upstream', () => {
  let base: string;
  let client: Client;
  let transport: StdioClientTransport;
  const changes: number[] = [];

  beforeAll(async () => {
    base = tmpDir('bastion-upstreams-stdio-');
    mkdirSync(path.join(base, 'ws'));
    const upstreamsFile = path.join(base, 'mcp.json');
    writeFileSync(
      upstreamsFile,
      JSON.stringify({
        mcpServers: {
          memory: {
            command: process.execPath,
            args: [MEMORY_JS],
            env: { MEMORY_FILE_PATH: path.join(base, 'memory.jsonl') },
          },
        },
      }),
    );
    client = new Client({ name: 'upstreams-stdio', version: '1.0.0' });
    client.setNotificationHandler('notifications/tools/list_changed', () => void changes.push(Date.now()));
    transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'stdio', '--workspace', path.join(base, 'ws'), '--data-dir', path.join(base, 'data')],
      env: { BASTION_UPSTREAMS: upstreamsFile },
      stderr: 'pipe',
    });
    await client.connect(transport);
  });

  afterAll(async () => {
    await client?.close();
    rmSync(base, { recursive: true, force: true });
  });

  const memoryProcess = () =>
    childrenOf(transport.pid as number).find((child) => child.cmdline.includes(MEMORY_JS));

  it('lists the upstream tools, announces tool changes, and follows the upstream down and back up', async () => {
    expect(client.getServerCapabilities()?.tools?.listChanged).toBe(true);
    await waitFor('the memory tools are listed', async () =>
      (await toolNames(client)).includes('memory_read_graph'),
    );
    const graph = (await client.callTool({ name: 'memory_read_graph', arguments: {} })) as Result;
    expect(graph.structuredContent).toEqual({ entities: [], relations: [] });

    const first = await waitFor('the memory process runs', memoryProcess);
    const announced = changes.length;
    process.kill(first.pid, 'SIGKILL');
    await waitFor('notifications/tools/list_changed after the kill', () => changes.length > announced);
    const down = await toolNames(client);
    expect(down.filter((n) => n.startsWith('memory_'))).toEqual([]);
    expect(down).toContain('read_text_file');

    const downAnnounced = changes.length;
    await waitFor('notifications/tools/list_changed after the restart', () => changes.length > downAnnounced);
    await waitFor('the memory tools are back', async () =>
      (await toolNames(client)).includes('memory_read_graph'),
    );
    const second = await waitFor('the restarted memory process runs', memoryProcess);
    expect(second.pid).not.toBe(first.pid);
    const again = (await client.callTool({ name: 'memory_read_graph', arguments: {} })) as Result;
    expect(again.isError).toBeFalsy();
  });
});

describe('a Bastion in front of another Bastion', () => {
  let base: string;
  let inner: HttpServer;
  let outer: HttpServer;

  beforeAll(async () => {
    base = tmpDir('bastion-upstreams-nested-');
    mkdirSync(path.join(base, 'inner-ws'));
    mkdirSync(path.join(base, 'outer-ws'));
    writeFileSync(path.join(base, 'inner-ws', 'notes.txt'), 'kept by the inner Bastion\n');
    const keys = new KeyStore(path.join(base, 'inner-data/keys.json'));
    const { key } = await keys.create({ client: 'outer-bastion', scopes: ['files:read'] });
    inner = await startTestServer(path.join(base, 'inner-ws'), {
      auth: { mode: 'api-key' },
      dataDir: path.join(base, 'inner-data'),
      audit: { enabled: false },
    });
    outer = await startTestServer(path.join(base, 'outer-ws'), {
      upstreams: {
        inner: { url: inner.url, headers: { Authorization: `Bearer ${key}` } },
      },
    });
  });

  afterAll(async () => {
    await outer?.close(100);
    await inner?.close(100);
    rmSync(base, { recursive: true, force: true });
  });

  it("offers the inner server's tools within its key's scopes and reads its workspace through it", async () => {
    const client = new Client({ name: 'nested', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(outer.url)));
    try {
      const names = await waitFor('the inner tools are listed', async () => {
        const listed = await toolNames(client);
        return listed.includes('inner_read_text_file') ? listed : undefined;
      });
      // The inner key reads only: the inner Bastion offers the outer one no write tool and no converse.
      expect(names).not.toContain('inner_write_file');
      expect(names).not.toContain('inner_converse');
      const read = (await client.callTool({
        name: 'inner_read_text_file',
        arguments: { path: 'notes.txt' },
      })) as Result;
      expect(read.isError).toBeFalsy();
      expect(read.content[0]?.text).toBe('kept by the inner Bastion\n');
      const escape = (await client.callTool({
        name: 'inner_read_text_file',
        arguments: { path: '../outer-ws' },
      })) as Result;
      expect(escape.isError).toBe(true);
    } finally {
      await client.close();
    }
  });
});

describe('a client of an upstream that sends escapes, controls and secrets', () => {
  let base: string;
  let server: HttpServer;
  let client: Client;

  beforeAll(async () => {
    base = tmpDir('bastion-upstreams-hostile-');
    mkdirSync(path.join(base, 'ws'));
    server = await startTestServer(path.join(base, 'ws'), {
      upstreams: { hostile: { command: process.execPath, args: [HOSTILE_JS], breakerFailures: 100 } },
    });
    client = new Client({ name: 'hostile-e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url)));
    await waitFor('the hostile tools are listed', async () =>
      (await toolNames(client)).includes('hostile_leak'),
    );
  });

  afterAll(async () => {
    await client?.close();
    await server?.close(100);
    rmSync(base, { recursive: true, force: true });
  });

  it('lists its tools with printable titles and descriptions, its schema texts included', async () => {
    const { tools } = await client.listTools(undefined, { cacheMode: 'bypass' });
    const leak = tools.find((t) => t.name === 'hostile_leak');
    expect(leak).toMatchObject({ title: 'Leak', description: 'Finds things.\n\tSafe line. hiddenevil' });
    expect(leak?.inputSchema.properties).toEqual({
      q: {
        type: 'string',
        title: 'Query',
        description: 'What to find.',
        enum: ['plain', 'refuse', 'data\u001b[1m'],
      },
    });
  });

  it("answers its failures in Bastion's words with the request id, never with the upstream's text", async () => {
    const failed = (await client.callTool({ name: 'hostile_leak', arguments: { q: 'plain' } })) as Result;
    expect(failed.isError).toBe(true);
    expect(failed.content[0]?.text).toMatch(
      /^hostile_leak failed: the upstream hostile answered with an error \(-32603\) \(request [\w-]+\)\.$/,
    );
    const refused = (await client.callTool({ name: 'hostile_leak', arguments: { q: 'refuse' } })) as Result;
    expect(refused.isError).toBe(true);
    expect(refused.content[0]?.text).toMatch(
      /^hostile_leak: the upstream hostile refused the arguments \(request [\w-]+\)\.$/,
    );
    for (const result of [failed, refused])
      expect(JSON.stringify(result)).not.toMatch(/database|hunter2|srv/);
  });
});

describe('a 2026-07-28 client listening over HTTP', () => {
  let base: string;
  let server: HttpServer;
  let client: Client;
  let changed = 0;

  beforeAll(async () => {
    base = tmpDir('bastion-upstreams-listen-');
    mkdirSync(path.join(base, 'ws'));
    server = await startTestServer(path.join(base, 'ws'), {
      upstreams: {
        memory: {
          command: process.execPath,
          args: [MEMORY_JS],
          env: { MEMORY_FILE_PATH: path.join(base, 'memory.jsonl') },
        },
      },
    });
    client = new Client(
      { name: 'upstreams-listen', version: '1.0.0' },
      {
        versionNegotiation: { mode: 'auto' },
        listChanged: { tools: { autoRefresh: false, debounceMs: 0, onChanged: () => void (changed += 1) } },
      },
    );
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url)));
    await waitFor('the memory tools are listed', async () =>
      (await toolNames(client)).includes('memory_read_graph'),
    );
  });

  afterAll(async () => {
    await client?.close();
    await server?.close(100);
    rmSync(base, { recursive: true, force: true });
  });

  it('hears on its subscriptions/listen stream when an upstream goes down and comes back', async () => {
    expect(client.getProtocolEra()).toBe('modern');
    expect(client.getServerCapabilities()?.tools?.listChanged).toBe(true);
    const memory = () => childrenOf(process.pid).find((child) => child.cmdline.includes(MEMORY_JS));
    const first = await waitFor('the memory process runs', memory);
    const before = changed;
    process.kill(first.pid, 'SIGKILL');
    await waitFor('a tools list_changed after the kill', () => changed > before);
    expect((await toolNames(client)).filter((n) => n.startsWith('memory_'))).toEqual([]);
    const down = changed;
    await waitFor('a tools list_changed after the restart', () => changed > down);
    await waitFor('the memory tools are back', async () =>
      (await toolNames(client)).includes('memory_read_graph'),
    );
    expect((await waitFor('the restarted memory process runs', memory)).pid).not.toBe(first.pid);
  });
});

describe('the SecureAgent with an upstream', () => {
  let base: string;
  let memoryFile: string;
  let fake: FakeModelServer;
  let server: HttpServer;
  const key: Record<string, string> = {};

  beforeAll(async () => {
    base = tmpDir('bastion-upstreams-agent-');
    mkdirSync(path.join(base, 'ws'));
    memoryFile = path.join(base, 'memory.jsonl');
    const keys = new KeyStore(path.join(base, 'data/keys.json'));
    key.withMemory = (
      await keys.create({ client: 'with-memory', scopes: ['agent', 'files:read', 'upstream:memory'] })
    ).key;
    key.withoutMemory = (
      await keys.create({ client: 'without-memory', scopes: ['agent', 'files:read'] })
    ).key;
    fake = await FakeModelServer.start('anthropic');
    server = await startTestServer(path.join(base, 'ws'), {
      auth: { mode: 'api-key' },
      dataDir: path.join(base, 'data'),
      audit: { enabled: false },
      agent: {
        provider: 'anthropic',
        anthropic: { apiKey: 'sk-test', baseUrl: fake.baseUrl },
        resilience: { retries: 0 },
      },
      upstreams: {
        memory: { command: process.execPath, args: [MEMORY_JS], env: { MEMORY_FILE_PATH: memoryFile } },
      },
    });
    const client = await connect(key.withMemory as string);
    try {
      await waitFor('the memory tools are listed', async () =>
        (await toolNames(client)).includes('memory_read_graph'),
      );
    } finally {
      await client.close();
    }
  });

  afterAll(async () => {
    await server?.close(100);
    await fake?.close();
    rmSync(base, { recursive: true, force: true });
  });

  async function connect(apiKey: string): Promise<Client> {
    const client = new Client({ name: 'upstreams-agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(server.url), {
        requestInit: { headers: { authorization: `Bearer ${apiKey}` } },
      }),
    );
    return client;
  }

  async function converse(apiKey: string, prompt: string): Promise<ConverseAnswer> {
    const client = await connect(apiKey);
    try {
      const result = (await client.callTool({ name: 'converse', arguments: { prompt } })) as Result;
      expect(result.isError).toBeFalsy();
      return result.structuredContent as unknown as ConverseAnswer;
    } finally {
      await client.close();
    }
  }

  it('offers the memory tools to the model, runs its calls upstream and feeds the results back', async () => {
    fake.reset();
    const entity = { name: 'Ada Lovelace', entityType: 'person', observations: ['wrote the first program'] };
    fake.enqueue(
      fake.wire.toolUse([{ name: 'memory_create_entities', input: { entities: [entity] } }]),
      fake.wire.toolUse([{ name: 'memory_read_graph', input: {} }]),
      fake.wire.text('Ada Lovelace is remembered.'),
    );
    const answer = await converse(key.withMemory as string, 'Remember Ada Lovelace, then show the graph.');

    const offered = fake.view(0).tools;
    expect(offered).toEqual(expect.arrayContaining(['memory_create_entities', 'memory_read_graph']));
    expect(offered).toContain('read_text_file');
    expect(offered).not.toContain('converse');
    expect(fake.view(0).system).toMatch(/come from other servers/);

    const created = fake.view(1).toolResults;
    expect(created).toHaveLength(1);
    expect(created[0]?.isError).toBeFalsy();
    expect(created[0]?.content).toContain('Ada Lovelace');
    // Each request carries the whole turn so far: the graph is the last result.
    const graph = fake.view(2).toolResults;
    expect(graph).toHaveLength(2);
    expect(graph[1]?.isError).toBeFalsy();
    expect(JSON.parse(graph[1]?.content as string)).toEqual({ entities: [entity], relations: [] });

    expect(answer.answer).toBe('Ada Lovelace is remembered.');
    expect(answer.steps.map((s) => [s.tool, s.outcome])).toEqual([
      ['memory_create_entities', 'ok'],
      ['memory_read_graph', 'ok'],
    ]);
    expect(fake.pending).toBe(0);

    const stored = readFileSync(memoryFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(stored).toContainEqual(expect.objectContaining({ type: 'entity', ...entity }));
    const client = await connect(key.withMemory as string);
    try {
      const read = (await client.callTool({ name: 'memory_read_graph', arguments: {} })) as Result;
      expect(read.structuredContent?.entities).toEqual([entity]);
    } finally {
      await client.close();
    }
  });

  it('offers no memory tool to a principal without upstream:memory, and refuses one the model names', async () => {
    fake.reset();
    fake.enqueue(
      fake.wire.toolUse([
        {
          name: 'memory_create_entities',
          input: { entities: [{ name: 'Smuggled', entityType: 'x', observations: [] }] },
        },
      ]),
      fake.wire.text('I could not.'),
    );
    const before = readFileSync(memoryFile, 'utf8');
    const answer = await converse(key.withoutMemory as string, 'Remember something.');
    const offered = fake.view(0).tools;
    expect(offered).toContain('read_text_file');
    expect(offered.filter((name) => name.startsWith('memory_'))).toEqual([]);
    expect(fake.view(0).system).not.toMatch(/come from other servers/);
    expect(answer.steps).toEqual([
      expect.objectContaining({ tool: 'memory_create_entities', outcome: 'refused' }),
    ]);
    expect(fake.view(1).toolResults[0]?.isError).toBe(true);
    expect(readFileSync(memoryFile, 'utf8')).toBe(before);
  });
});
