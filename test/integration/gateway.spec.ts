import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import pino, { type Logger } from 'pino';
import { localPrincipal, type Principal, type UpstreamScope } from '../../src/auth/principal.js';
import { upstreamsSchema } from '../../src/config/upstreams.schema.js';
import { Gateway } from '../../src/gateway/gateway.js';
import type { UpstreamStatus } from '../../src/gateway/upstream.js';
import { Metrics } from '../../src/observability/metrics.js';
import type { ProgressUpdate, ToolContext, ToolResult } from '../../src/tools/tool.js';
import { InvalidToolCall } from '../../src/tools/tool.errors.js';
import { ToolRegistry } from '../../src/tools/tool-registry.js';
import { workspaceTools } from '../../src/workspace/workspace.tools.js';
import { TestUpstream } from '../support/upstream-server.js';
import { createWorkspaceFixture, textOf, type WorkspaceFixture } from '../support/workspace-fixture.js';
import { advanceUntil, track, untilReal, useFakeClock } from '../support/fake-clock.js';
import { alive, childrenOf, waitFor } from '../support/processes.js';

const MEMORY_SERVER = path.resolve('node_modules/@modelcontextprotocol/server-memory/dist/index.js');
const EVERYTHING_SERVER = path.resolve('node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const HOSTILE_SERVER = path.resolve('test/support/hostile-upstream.mjs');
const NPX_WRAPPER = path.resolve('test/support/npx-wrapper.mjs');
const MIB = 1024 * 1024;

/** A stdio MCP server that completes the handshake and never answers anything else. */
const MUTE_SERVER = `
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.method === 'initialize')
    process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {
      protocolVersion: m.params.protocolVersion, capabilities: { tools: {} },
      serverInfo: { name: 'mute', version: '1.0.0' } } }) + '\\n');
});
`;

const logger = pino({ level: 'silent' });
const metrics = new Metrics();

/** The sum of a counter's or gauge's values whose labels include `labels`. */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const found = metrics.registry.getSingleMetric(name);
  if (!found) throw new Error(`No metric ${name}`);
  const { values } = await found.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value))
    .reduce((sum, v) => sum + v.value, 0);
}

/** A slow start (a busy machine) may take the first attempt past timeoutMs: the retry brings it up. */
async function untilUp(gateway: Gateway, ...names: string[]): Promise<void> {
  await waitFor(
    `${names.join(', ')} are up`,
    () => names.every((n) => statusOf(gateway, n).state === 'up'),
    20_000,
  );
}

function statusOf(gateway: Gateway, name: string): UpstreamStatus {
  const status = gateway.status().find((s) => s.name === name);
  if (!status) throw new Error(`No upstream ${name}`);
  return status;
}

/** A Bastion with a gateway over `upstreams` (as a config file would give them), driven without a server. */
interface Harness {
  registry: ToolRegistry;
  gateway: Gateway;
  principal: Principal;
  ws: WorkspaceFixture;
  ctx(overrides?: Partial<ToolContext>): ToolContext;
  call(name: string, args: Record<string, unknown>, overrides?: Partial<ToolContext>): Promise<ToolResult>;
  names(): string[];
  close(): Promise<void>;
}

async function startHarness(
  upstreams: Record<string, unknown>,
  maxResponseBytes = 4 * MIB,
  gatewayLogger: Logger = logger,
): Promise<Harness> {
  const ws = await createWorkspaceFixture();
  const configs = upstreamsSchema.parse(upstreams);
  const registry = new ToolRegistry(workspaceTools, maxResponseBytes);
  const gateway = await Gateway.open(configs, { registry, logger: gatewayLogger, metrics, maxResponseBytes });
  const scopes = configs.map((c) => c.scope).filter((s): s is UpstreamScope => s.startsWith('upstream:'));
  const principal = localPrincipal(false, false, scopes);
  const ctx = (overrides: Partial<ToolContext> = {}): ToolContext => ({
    principal,
    sandbox: ws.sandbox,
    signal: new AbortController().signal,
    logger,
    requestId: 'gateway-test',
    ...overrides,
  });
  gateway.start();
  await gateway.settled();
  return {
    registry,
    gateway,
    principal,
    ws,
    ctx,
    call: (name, args, overrides) => registry.invoke(name, args, ctx(overrides)),
    names: () => registry.list(principal).map((t) => t.name),
    close: async () => {
      await gateway.close();
      ws.cleanup();
    },
  };
}

describe('stdio upstreams: server-memory and server-everything', () => {
  let h: Harness;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-gateway-'));
    h = await startHarness({
      memory: {
        command: process.execPath,
        args: [MEMORY_SERVER],
        env: { MEMORY_FILE_PATH: path.join(dir, 'memory.jsonl') },
        tools: { deny: ['delete_entities', 'delete_relations', 'delete_observations'] },
        healthCheckIntervalMs: 1000,
      },
      everything: {
        command: process.execPath,
        args: [EVERYTHING_SERVER, 'stdio'],
        prefix: 'ev_',
        tools: { allow: ['echo', 'get-sum'] },
        timeoutMs: 1000,
        breakerFailures: 2,
        breakerHalfOpenMs: 400,
        healthCheckIntervalMs: 1000,
      },
    });
    await untilUp(h.gateway, 'memory', 'everything');
  }, 30_000);

  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('offers the allowed tools with their prefix, and the schemas and hints the upstream gave', async () => {
    expect(h.gateway.status().map((s) => [s.name, s.state, s.circuit])).toEqual([
      ['memory', 'up', 'closed'],
      ['everything', 'up', 'closed'],
    ]);
    const names = h.names();
    expect(names.filter((n) => n.startsWith('memory_')).sort()).toEqual([
      'memory_add_observations',
      'memory_create_entities',
      'memory_create_relations',
      'memory_open_nodes',
      'memory_read_graph',
      'memory_search_nodes',
    ]);
    expect(names.filter((n) => n.startsWith('ev_')).sort()).toEqual(['ev_echo', 'ev_get-sum']);
    expect(names).toContain('read_text_file');
    expect(statusOf(h.gateway, 'everything').server?.name).toBeTruthy();

    const direct = new Client({ name: 'gateway-test', version: '1.0.0' });
    await direct.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [MEMORY_SERVER],
        env: { MEMORY_FILE_PATH: path.join(dir, 'direct.jsonl') },
        stderr: 'ignore',
      }),
    );
    try {
      const { tools } = await direct.listTools();
      const offered = new Map(h.registry.list(h.principal).map((t) => [t.name, t]));
      for (const tool of tools.filter((t) => !t.name.startsWith('delete_'))) {
        const mine = offered.get(`memory_${tool.name}`);
        expect(mine?.inputSchema).toEqual(tool.inputSchema);
        expect(mine?.outputSchema).toEqual(tool.outputSchema);
        expect(mine?.description).toBe(tool.description);
        expect(mine?.annotations).toMatchObject(tool.annotations ?? {});
      }
    } finally {
      await direct.close();
    }
    expect(h.registry.definition('memory_read_graph')?.annotations).toMatchObject({
      readOnlyHint: true,
      idempotentHint: true,
    });
    expect(h.registry.definition('memory_create_entities')?.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: false,
    });

    const workspaceOnly = localPrincipal(false, false, []);
    expect(h.registry.list(workspaceOnly).some((t) => t.name.startsWith('memory_'))).toBe(false);
    const refused = await h.call('memory_read_graph', {}, { principal: workspaceOnly });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain('needs the upstream:memory scope');
  });

  it('round-trips calls to both upstreams', async () => {
    const created = await h.call('memory_create_entities', {
      entities: [{ name: 'Ada', entityType: 'person', observations: ['wrote the first program'] }],
    });
    expect(created.isError).toBeUndefined();
    expect(created.structuredContent).toEqual({
      entities: [{ name: 'Ada', entityType: 'person', observations: ['wrote the first program'] }],
    });
    const graph = await h.call('memory_read_graph', {});
    expect(graph.structuredContent?.entities).toEqual([
      { name: 'Ada', entityType: 'person', observations: ['wrote the first program'] },
    ]);
    expect(JSON.parse(textOf(graph)).entities[0].name).toBe('Ada');

    expect(textOf(await h.call('ev_echo', { message: 'hello upstream' }))).toBe('Echo: hello upstream');
    expect(textOf(await h.call('ev_get-sum', { a: 2, b: 40 }))).toContain('is 42');
    expect(await metric('bastion_upstream_calls_total', { upstream: 'memory', outcome: 'ok' })).toBe(2);
  });

  it('refuses bad arguments at the door, before the upstream sees them', async () => {
    const before = await metric('bastion_upstream_calls_total', { upstream: 'memory' });
    const bad = h.registry.run('memory_create_entities', { entities: 'Ada' }, h.ctx());
    await expect(bad).rejects.toBeInstanceOf(InvalidToolCall);
    await expect(bad).rejects.toMatchObject({ code: 'invalid_arguments' });
    await expect(h.registry.run('ev_get-sum', { a: '2', b: 40 }, h.ctx())).rejects.toBeInstanceOf(
      InvalidToolCall,
    );
    await expect(h.registry.run('ev_echo', {}, h.ctx())).rejects.toBeInstanceOf(InvalidToolCall);
    await expect(
      h.registry.run('memory_delete_entities', { entityNames: ['Ada'] }, h.ctx()),
    ).rejects.toBeInstanceOf(InvalidToolCall);
    expect(await metric('bastion_upstream_calls_total', { upstream: 'memory' })).toBe(before);
    expect(await metric('bastion_upstream_calls_total', { upstream: 'everything' })).toBe(2);
    const graph = await h.call('memory_read_graph', {});
    expect((graph.structuredContent?.entities as unknown[]).length).toBe(1);
  });

  it('hides the tools of a killed upstream, refuses calls meanwhile, and restarts it', async () => {
    const { pid } = statusOf(h.gateway, 'memory');
    expect(pid).toEqual(expect.any(Number));
    let changes = 0;
    const stop = h.registry.onChange(() => (changes += 1));
    try {
      process.kill(pid as number, 'SIGKILL');
      await waitFor('the memory tools are hidden', () => !h.names().includes('memory_read_graph'));
      expect(changes).toBeGreaterThan(0);
      expect(h.names()).toContain('ev_echo');
      const meanwhile = await h.call('memory_read_graph', {});
      expect(meanwhile.isError).toBe(true);
      expect(textOf(meanwhile)).toMatch(
        /memory_read_graph is unavailable: the upstream memory is not connected/,
      );
      expect(await metric('bastion_upstream_tools', { upstream: 'memory' })).toBe(0);

      const seen = changes;
      await waitFor('the memory tools are back', () => h.names().includes('memory_read_graph'));
      expect(changes).toBeGreaterThan(seen);
    } finally {
      stop();
    }
    const status = statusOf(h.gateway, 'memory');
    expect(status).toMatchObject({ state: 'up', circuit: 'closed', restarts: 1 });
    expect(status.pid).toEqual(expect.any(Number));
    expect(status.pid).not.toBe(pid);
    expect(alive(pid as number)).toBe(false);
    expect(await metric('bastion_upstream_restarts_total', { upstream: 'memory' })).toBe(1);
    expect(await metric('bastion_upstream_up', { upstream: 'memory' })).toBe(1);
    expect(await metric('bastion_upstream_tools', { upstream: 'memory' })).toBe(status.tools.length);
    const graph = await h.call('memory_read_graph', {});
    expect((graph.structuredContent?.entities as { name: string }[]).map((e) => e.name)).toEqual(['Ada']);
  });

  it('times out on a hung upstream, opens its circuit, keeps the rest fast, and replaces the process', async () => {
    const { pid } = statusOf(h.gateway, 'everything');
    const restartsBefore = statusOf(h.gateway, 'everything').restarts;
    expect(pid).toEqual(expect.any(Number));
    process.kill(pid as number, 'SIGSTOP');
    try {
      const started = Date.now();
      const first = await h.call('ev_echo', { message: 'anyone there?' });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(first.isError).toBe(true);
      expect(textOf(first)).toBe(
        'ev_echo timed out: the upstream everything did not answer within 1s (request gateway-test).',
      );

      // Calls and health checks fail until breakerFailures in a row open the circuit.
      await waitFor(
        'the everything circuit opens',
        async () => {
          if (h.names().includes('ev_echo')) await h.call('ev_echo', { message: 'still there?' });
          return statusOf(h.gateway, 'everything').circuit !== 'closed';
        },
        8000,
      );
      expect(h.names()).not.toContain('ev_echo');
      expect(h.names()).not.toContain('ev_get-sum');
      const paused = await h.call('ev_echo', { message: 'paused?' });
      expect(paused.isError).toBe(true);
      expect(textOf(paused)).toMatch(/ev_echo is unavailable: the upstream everything is/);

      const quick = Date.now();
      const graph = await h.call('memory_read_graph', {});
      const listing = await h.call('list_directory', { path: '.' });
      expect(Date.now() - quick).toBeLessThan(500);
      expect(graph.isError).toBeUndefined();
      expect(listing.isError).toBeUndefined();
      expect(h.names()).toContain('memory_read_graph');

      await waitFor(
        'the everything upstream is replaced',
        () => {
          const s = statusOf(h.gateway, 'everything');
          return s.state === 'up' && s.circuit === 'closed' && s.pid !== undefined && s.pid !== pid;
        },
        15_000,
      );
      expect(h.names()).toEqual(expect.arrayContaining(['ev_echo', 'ev_get-sum']));
      expect(textOf(await h.call('ev_echo', { message: 'back' }))).toBe('Echo: back');
      expect(statusOf(h.gateway, 'everything').restarts).toBe(restartsBefore + 1);
      expect(await metric('bastion_upstream_restarts_total', { upstream: 'everything' })).toBe(1);
      expect(await metric('bastion_upstream_circuit_open', { upstream: 'everything' })).toBe(0);
      expect(
        await metric('bastion_upstream_calls_total', { upstream: 'everything', outcome: 'upstream_timeout' }),
      ).toBeGreaterThanOrEqual(1);
      await waitFor('the stopped process is gone', () => !alive(pid as number), 8000);
    } finally {
      try {
        process.kill(pid as number, 'SIGCONT');
        process.kill(pid as number, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, 30_000);
});

describe('an HTTP upstream', () => {
  const maxResponseBytes = 64 * 1024;
  let upstream: TestUpstream;
  let h: Harness;

  beforeAll(async () => {
    upstream = await TestUpstream.start();
    h = await startHarness(
      {
        web: {
          url: upstream.url,
          headers: { 'X-Upstream-Key': 'literal-key', Authorization: 'Bearer literal-token' },
          pool: 3,
          timeoutMs: 1000,
          maxRetries: 1,
          healthCheckIntervalMs: 1000,
          breakerFailures: 5,
        },
      },
      maxResponseBytes,
    );
    await untilUp(h.gateway, 'web');
  });

  afterAll(async () => {
    await h?.close();
    await upstream?.close();
  });

  const toolCalls = () => upstream.requests.filter((r) => r.rpc === 'tools/call').length;

  it('lists and calls its tools over a pool of sessions, sending the configured headers', async () => {
    expect(statusOf(h.gateway, 'web')).toMatchObject({
      state: 'up',
      type: 'http',
      server: { name: 'test-upstream' },
    });
    expect(
      h
        .names()
        .filter((n) => n.startsWith('web_'))
        .sort(),
    ).toEqual(['web_big', 'web_echo', 'web_hang', 'web_progress', 'web_write']);
    expect(h.registry.definition('web_echo')?.annotations.readOnlyHint).toBe(true);
    expect(h.registry.definition('web_write')?.annotations).toMatchObject({
      readOnlyHint: false,
      idempotentHint: false,
    });
    expect(upstream.sessionCount).toBe(3);
    expect(upstream.requests.filter((r) => r.rpc === 'initialize')).toHaveLength(3);

    expect(textOf(await h.call('web_echo', { text: 'over http' }))).toBe('over http');
    expect(upstream.calls.echo).toBe(1);

    expect(upstream.requests.length).toBeGreaterThan(3);
    for (const request of upstream.requests) {
      expect(request.headers['x-upstream-key']).toBe('literal-key');
      expect(request.headers.authorization).toBe('Bearer literal-token');
    }
  });

  it('refuses bad arguments at the door', async () => {
    const before = toolCalls();
    await expect(h.registry.run('web_echo', { text: 5 }, h.ctx())).rejects.toBeInstanceOf(InvalidToolCall);
    await expect(h.registry.run('web_big', { bytes: -1 }, h.ctx())).rejects.toBeInstanceOf(InvalidToolCall);
    expect(toolCalls()).toBe(before);
  });

  it('refuses a result over the response limit, and survives one over the transport cap', async () => {
    const overLimit = await h.call('web_big', { bytes: maxResponseBytes + 1000 });
    expect(overLimit.isError).toBe(true);
    expect(textOf(overLimit)).toContain(`over the ${maxResponseBytes}-byte response limit`);

    const cap = maxResponseBytes * 2 + 64 * 1024;
    const started = Date.now();
    const overCap = await h.call('web_big', { bytes: cap + 10_000 });
    expect(overCap.isError).toBe(true);
    expect(textOf(overCap)).toBe(
      `web_big failed: the upstream web sent a reply over the ${cap}-byte limit (request gateway-test).`,
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await metric('bastion_upstream_calls_total', { upstream: 'web', outcome: 'too_large' })).toBe(1);

    expect(textOf(await h.call('web_echo', { text: 'still here' }))).toBe('still here');
    expect(h.names()).toContain('web_big');
    expect(statusOf(h.gateway, 'web').state).toBe('up');
  });

  it('does not retry a tool that is neither read-only nor idempotent', async () => {
    const writes = upstream.calls.write ?? 0;
    const before = toolCalls();
    upstream.failNext(1);
    const result = await h.call('web_write', { value: 'once' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe(
      'web_write failed: the upstream web answered HTTP 503 (request gateway-test).',
    );
    expect(upstream.calls.write ?? 0).toBe(writes);
    expect(toolCalls()).toBe(before + 1);
    expect(textOf(await h.call('web_write', { value: 'twice' }))).toBe('wrote twice');
  });

  it('forwards a cancellation upstream', async () => {
    const cancelled = upstream.cancelled;
    const hangs = upstream.calls.hang ?? 0;
    const controller = new AbortController();
    const pending = h.call('web_hang', {}, { signal: controller.signal });
    await waitFor('the hang call reaches the upstream', () => (upstream.calls.hang ?? 0) === hangs + 1);
    controller.abort();
    const result = await pending;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe('web_hang was cancelled or timed out.');
    await waitFor('the upstream sees the cancellation', () => upstream.cancelled === cancelled + 1);
    expect(upstream.calls.hang).toBe(hangs + 1);
  });

  it('passes progress from the upstream to the caller', async () => {
    const updates: ProgressUpdate[] = [];
    const result = await h.call(
      'web_progress',
      { steps: 3 },
      { progress: async (u) => void updates.push(u) },
    );
    expect(textOf(result)).toBe('3 steps');
    expect(updates.map((u) => [u.progress, u.total])).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
  });
});

describe('an HTTP upstream, its timeout and retry backoff on a fake clock', () => {
  let upstream: TestUpstream;
  let h: Harness;

  // The gateway's timers (call timeouts, retry backoff, health checks) are all fake from its start; the
  // HTTP to the upstream stays real.
  beforeAll(async () => {
    useFakeClock();
    upstream = await TestUpstream.start();
    h = await startHarness({
      web: { url: upstream.url, pool: 2, timeoutMs: 1000, maxRetries: 1, healthCheckIntervalMs: 1000 },
    });
    await untilReal('web is up', () => statusOf(h.gateway, 'web').state === 'up');
  });

  afterAll(async () => {
    await h?.close();
    await upstream?.close();
    jest.useRealTimers();
  });

  const toolCalls = () => upstream.requests.filter((r) => r.rpc === 'tools/call').length;

  it('retries a read-only tool once after a failed attempt', async () => {
    const echoes = upstream.calls.echo ?? 0;
    const before = toolCalls();
    upstream.failNext(1);
    const result = track(h.call('web_echo', { text: 'second time lucky' }));
    await untilReal('the first attempt fails', () => toolCalls() === before + 1);
    // The retry waits out its backoff (exponential from 200 ms, with jitter) on the fake clock.
    const waited = await advanceUntil('retried', () => toolCalls() === before + 2);
    expect(waited).toBeGreaterThan(0);
    const outcome = await result.promise;
    expect(outcome.isError).toBeUndefined();
    expect(textOf(outcome)).toBe('second time lucky');
    expect(upstream.calls.echo).toBe(echoes + 1);
    expect(toolCalls()).toBe(before + 2);
  });

  it('times out a call and cancels it upstream, without a retry', async () => {
    const cancelled = upstream.cancelled;
    const hangs = upstream.calls.hang ?? 0;
    const before = toolCalls();
    const result = track(h.call('web_hang', {}));
    await untilReal('the hang call reaches the upstream', () => (upstream.calls.hang ?? 0) === hangs + 1);
    await jest.advanceTimersByTimeAsync(999);
    expect(result.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    await untilReal('the call times out', () => result.settled, 5_000);
    const outcome = await result.promise;
    expect(outcome.isError).toBe(true);
    expect(textOf(outcome)).toBe(
      'web_hang timed out: the upstream web did not answer within 1s (request gateway-test).',
    );
    await untilReal('the upstream sees the cancellation', () => upstream.cancelled === cancelled + 1);
    // No retry, however long one would have waited.
    await jest.advanceTimersByTimeAsync(10_000);
    expect(upstream.calls.hang).toBe(hangs + 1);
    expect(toolCalls()).toBe(before + 1);
  });
});

describe('the circuit breaker of an HTTP upstream, on a fake clock', () => {
  let upstream: TestUpstream;
  let h: Harness;

  // Its pause, health checks and restart backoff run on the fake clock from the gateway's start.
  beforeAll(async () => {
    useFakeClock();
    upstream = await TestUpstream.start();
    h = await startHarness({
      flaky: {
        url: upstream.url,
        pool: 1,
        timeoutMs: 1000,
        maxRetries: 0,
        breakerFailures: 3,
        breakerHalfOpenMs: 300,
        healthCheckIntervalMs: 1000,
      },
    });
    await untilReal('flaky is up', () => statusOf(h.gateway, 'flaky').state === 'up');
  });

  afterAll(async () => {
    await h?.close();
    await upstream?.close();
    jest.useRealTimers();
  });

  it('does not hold cancelled calls against the upstream', async () => {
    for (let i = 1; i <= 3; i++) {
      const controller = new AbortController();
      const pending = h.call('flaky_hang', {}, { signal: controller.signal });
      await untilReal('the hang call reaches the upstream', () => upstream.calls.hang === i);
      controller.abort();
      expect(textOf(await pending)).toBe('flaky_hang was cancelled or timed out.');
    }
    await untilReal('the upstream sees the cancellations', () => upstream.cancelled === 3);
    expect(statusOf(h.gateway, 'flaky').circuit).toBe('closed');
    expect(h.names()).toContain('flaky_hang');
    expect(await metric('bastion_upstream_calls_total', { upstream: 'flaky', outcome: 'cancelled' })).toBe(3);
  });

  it('hides the tools while the upstream fails, and offers them again once it answers', async () => {
    expect(h.names()).toContain('flaky_echo');
    upstream.failNext(1000);
    // breakerFailures failed calls in a row open it.
    for (let i = 0; i < 3; i++) {
      expect(statusOf(h.gateway, 'flaky').circuit).toBe('closed');
      const result = await h.call('flaky_write', { value: 'x' });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toBe(
        'flaky_write failed: the upstream flaky answered HTTP 503 (request gateway-test).',
      );
    }
    expect(upstream.calls.write).toBeUndefined();
    expect(statusOf(h.gateway, 'flaky').circuit).toBe('open');
    expect(h.names().some((n) => n.startsWith('flaky_'))).toBe(false);
    expect(h.names()).toContain('read_text_file');
    expect(await metric('bastion_upstream_circuit_open', { upstream: 'flaky' })).toBe(1);
    expect(await metric('bastion_upstream_tools', { upstream: 'flaky' })).toBe(0);
    const requests = upstream.requests.length;
    const paused = await h.call('flaky_echo', { text: 'paused' });
    expect(textOf(paused)).toMatch(
      /^flaky_echo is unavailable: the upstream flaky is failing, and calls are paused/,
    );
    expect(upstream.requests.length).toBe(requests);

    upstream.failNext(0);
    // The health check that tries the circuit again comes exactly breakerHalfOpenMs after it opened.
    await jest.advanceTimersByTimeAsync(299);
    expect(h.names()).not.toContain('flaky_echo');
    expect(upstream.requests.length).toBe(requests);
    await jest.advanceTimersByTimeAsync(1);
    await untilReal('the flaky tools are back', () => h.names().includes('flaky_echo'), 5000);
    expect(statusOf(h.gateway, 'flaky')).toMatchObject({ state: 'up', circuit: 'closed', restarts: 0 });
    expect(await metric('bastion_upstream_circuit_open', { upstream: 'flaky' })).toBe(0);
    expect(await metric('bastion_upstream_tools', { upstream: 'flaky' })).toBeGreaterThan(0);
    expect(textOf(await h.call('flaky_echo', { text: 'back' }))).toBe('back');
  });

  it('opens new sessions when the upstream restarts and forgets the old ones', async () => {
    const port = Number(new URL(upstream.url).port);
    await upstream.close();
    upstream = await TestUpstream.start(port);
    // Failed checks open the circuit, the check after its pause replaces the connection, the restart waits
    // out its backoff: all on the fake clock, stepped while the calls go over real HTTP.
    await advanceUntil('calls reach the restarted upstream', async () =>
      statusOf(h.gateway, 'flaky').state === 'up' && h.names().includes('flaky_echo')
        ? textOf(await h.call('flaky_echo', { text: 'again' })) === 'again'
        : false,
    );
    expect(upstream.sessionCount).toBe(1);
    expect(statusOf(h.gateway, 'flaky')).toMatchObject({ state: 'up', circuit: 'closed', restarts: 1 });
  });
});

describe('upstreams that are disabled, missing, or closed', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-gateway-life-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('skips a disabled upstream, keeps retrying a missing command, and closes every process', async () => {
    // The retries of the missing command wait on the fake clock; starting processes stays real.
    useFakeClock();
    const late = path.join(dir, 'late-node');
    const h = await startHarness({
      off: { command: process.execPath, args: [MEMORY_SERVER], disabled: true },
      late: {
        command: late,
        args: [MEMORY_SERVER],
        env: { MEMORY_FILE_PATH: path.join(dir, 'late.jsonl') },
      },
      kept: {
        command: process.execPath,
        args: [MEMORY_SERVER],
        env: { MEMORY_FILE_PATH: path.join(dir, 'kept.jsonl') },
      },
    });
    try {
      expect(statusOf(h.gateway, 'off')).toMatchObject({ state: 'disabled', tools: [], restarts: 0 });
      expect(statusOf(h.gateway, 'off').pid).toBeUndefined();
      expect(h.registry.has('off_read_graph')).toBe(false);

      const missing = statusOf(h.gateway, 'late');
      expect(missing).toMatchObject({ state: 'down', tools: [] });
      expect(missing.lastError).toBe('could not be started (ENOENT)');
      expect(missing.pid).toBeUndefined();
      expect(statusOf(h.gateway, 'kept').state).toBe('up');

      // The command appears: the next retry, its backoff (500 ms after the first failure) over, starts it.
      symlinkSync(process.execPath, late);
      await jest.advanceTimersByTimeAsync(499);
      expect(statusOf(h.gateway, 'late')).toMatchObject({ state: 'down', tools: [] });
      await jest.advanceTimersByTimeAsync(1);
      await untilReal('the late upstream comes up', () => statusOf(h.gateway, 'late').state === 'up', 8000);
      expect(h.names()).toContain('late_read_graph');
      expect(statusOf(h.gateway, 'late').lastError).toBeUndefined();

      const pids = h.gateway.status().flatMap((s) => (s.pid === undefined ? [] : [s.pid]));
      expect(pids).toHaveLength(2);
      jest.useRealTimers();
      await h.gateway.close();
      expect(h.gateway.status().map((s) => s.state)).toEqual(['closed', 'closed', 'closed']);
      for (const pid of pids) await waitFor(`process ${pid} is gone`, () => !alive(pid), 5000);
    } finally {
      jest.useRealTimers();
      await h.close();
    }
  });

  it('closes an upstream that is still listing its tools, and does not start it again', async () => {
    const h = await startHarness({});
    const gateway = await Gateway.open(
      upstreamsSchema.parse({
        mute: { command: process.execPath, args: ['-e', MUTE_SERVER], timeoutMs: 5000 },
      }),
      { registry: h.registry, logger, metrics, maxResponseBytes: 4 * MIB },
    );
    try {
      gateway.start();
      const pid = await waitFor('the mute upstream has started', () => statusOf(gateway, 'mute').pid);
      await gateway.close();
      await gateway.settled();
      expect(statusOf(gateway, 'mute').state).toBe('closed');
      await waitFor(`process ${pid} is gone`, () => !alive(pid), 5000);
      expect(statusOf(gateway, 'mute')).toMatchObject({ state: 'closed', tools: [] });
      expect(statusOf(gateway, 'mute').pid).toBeUndefined();
    } finally {
      await gateway.close();
      await h.close();
    }
  });
});

describe('a stdio upstream that replies over the transport cap', () => {
  const maxResponseBytes = 16 * 1024;
  let h: Harness;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-gateway-cap-'));
    h = await startHarness(
      {
        small: {
          command: process.execPath,
          args: [MEMORY_SERVER],
          env: { MEMORY_FILE_PATH: path.join(dir, 'small.jsonl') },
        },
      },
      maxResponseBytes,
    );
  });

  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers too_large, and the upstream is restarted', async () => {
    const cap = maxResponseBytes * 2 + 64 * 1024;
    const { pid } = statusOf(h.gateway, 'small');
    await h.call('small_create_entities', {
      entities: [{ name: 'Bo', entityType: 'cat', observations: [] }],
    });
    const big = await h.call('small_create_entities', {
      entities: [{ name: 'Big', entityType: 'blob', observations: ['x'.repeat(cap)] }],
    });
    expect(big.isError).toBe(true);
    expect(textOf(big)).toBe(
      `small_create_entities failed: the upstream small sent a reply over the ${cap}-byte limit (request gateway-test).`,
    );
    await waitFor('the small upstream is back', () => {
      const s = statusOf(h.gateway, 'small');
      return s.state === 'up' && s.pid !== pid && h.names().includes('small_search_nodes');
    });
    const found = await h.call('small_search_nodes', { query: 'cat' });
    expect((found.structuredContent?.entities as { name: string }[]).map((e) => e.name)).toEqual(['Bo']);
  });
});

describe('a stdio upstream started through a launcher, as npx does', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-gateway-npx-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The launcher's pid (the upstream's, as Bastion knows it) and the pid of the server it started. */
  async function launched(gateway: Gateway, name: string): Promise<{ launcher: number; server: number }> {
    await untilUp(gateway, name);
    const launcher = statusOf(gateway, name).pid as number;
    const server = await waitFor(`${name}'s launcher runs its server`, () => childrenOf(launcher)[0]?.pid);
    return { launcher, server };
  }

  it('ends the launcher and the server it started when Bastion closes, though the server outlives its stdin', async () => {
    // Many servers keep running once their stdin closes (a timer, a pool): only a signal ends them.
    const outlivesStdin = `setInterval(() => {}, 1 << 30); import(${JSON.stringify(pathToFileURL(MEMORY_SERVER).href)});`;
    const h = await startHarness({
      launched: {
        command: process.execPath,
        args: [NPX_WRAPPER, '-e', outlivesStdin],
        env: { MEMORY_FILE_PATH: path.join(dir, 'outlives.jsonl') },
      },
    });
    let server: number | undefined;
    try {
      const pids = await launched(h.gateway, 'launched');
      server = pids.server;
      expect(childrenOf(pids.launcher)[0]?.cmdline).toContain(MEMORY_SERVER);
      await h.gateway.close();
      await waitFor('the launcher is gone', () => !alive(pids.launcher), 8000);
      await waitFor('the server it started is gone', () => !alive(pids.server), 8000);
    } finally {
      if (server !== undefined && alive(server)) process.kill(server, 'SIGKILL');
      await h.close();
    }
  }, 30_000);

  it('kills the launcher and its server together when the server hangs, and starts both again', async () => {
    const h = await startHarness({
      hanging: {
        command: process.execPath,
        args: [NPX_WRAPPER, MEMORY_SERVER],
        env: { MEMORY_FILE_PATH: path.join(dir, 'hanging.jsonl') },
        timeoutMs: 1000,
        healthCheckIntervalMs: 1000,
        breakerFailures: 1,
        breakerHalfOpenMs: 1000,
      },
    });
    const first = await launched(h.gateway, 'hanging');
    try {
      process.kill(first.server, 'SIGSTOP');
      await waitFor(
        'a new launcher replaces the hung one',
        () => {
          const s = statusOf(h.gateway, 'hanging');
          return (
            s.state === 'up' && s.circuit === 'closed' && s.pid !== undefined && s.pid !== first.launcher
          );
        },
        15_000,
      );
      await waitFor('the hung server is gone', () => !alive(first.server), 8000);
      expect(alive(first.launcher)).toBe(false);
      const second = await launched(h.gateway, 'hanging');
      expect(alive(second.server)).toBe(true);
      expect(textOf(await h.call('hanging_read_graph', {}))).toContain('entities');
    } finally {
      try {
        process.kill(first.server, 'SIGCONT');
        process.kill(first.server, 'SIGKILL');
      } catch {
        // already gone
      }
      await h.close();
    }
  }, 30_000);
});

describe('an upstream that sends escapes, controls and secrets', () => {
  const lines: string[] = [];
  let h: Harness;

  beforeAll(async () => {
    const captured = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    h = await startHarness(
      {
        hostile: { command: process.execPath, args: [HOSTILE_SERVER], breakerFailures: 100 },
        failing: { command: process.execPath, args: [HOSTILE_SERVER], env: { HOSTILE_FAIL: 'list' } },
      },
      4 * MIB,
      captured,
    );
    await untilUp(h.gateway, 'hostile');
  });

  afterAll(async () => {
    await h?.close();
  });

  const logged = (msg: string) =>
    lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === msg);

  it("answers a failed call in Bastion's words with the request id, and logs what the upstream said", async () => {
    const failed = await h.call('hostile_leak', { q: 'plain' });
    expect(failed.isError).toBe(true);
    expect(textOf(failed)).toBe(
      'hostile_leak failed: the upstream hostile answered with an error (-32603) (request gateway-test).',
    );
    const refused = await h.call('hostile_leak', { q: 'refuse' });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toBe(
      'hostile_leak: the upstream hostile refused the arguments (request gateway-test).',
    );
    for (const result of [failed, refused]) expect(textOf(result)).not.toMatch(/database|hunter2|srv/);

    expect(logged('upstream call failed')).toEqual([
      expect.objectContaining({
        level: 40,
        upstream: 'hostile',
        tool: 'hostile_leak',
        reqId: 'gateway-test',
        reason: 'answered with an error (-32603): database failed: password=[redacted] at /srv/app/secret.js',
      }),
      expect.objectContaining({
        reason:
          'answered with an error (-32602): bad q: database failed: password=[redacted] at /srv/app/secret.js',
      }),
    ]);
    expect(lines.join('\n')).not.toContain('hunter2');
  });

  it('shows its server info, tool texts and skipped names without escapes, controls or overrides', () => {
    const status = statusOf(h.gateway, 'hostile');
    expect(status.server).toEqual({ name: 'evil-server', title: 'Evil Title', version: '6.66' });
    expect(status.skipped).toEqual([
      { name: 'badname', reason: 'the name, with its prefix, is not 1-64 letters, digits, _ or -' },
    ]);
    const listed = h.registry.list(h.principal).find((t) => t.name === 'hostile_leak');
    expect(listed).toMatchObject({ title: 'Leak', description: 'Finds things.\n\tSafe line. hiddenevil' });
    expect(listed?.inputSchema).toEqual({
      type: 'object',
      properties: {
        q: {
          type: 'string',
          title: 'Query',
          description: 'What to find.',
          enum: ['plain', 'refuse', 'data\u001b[1m'],
        },
      },
    });
  });

  it("keeps the upstream's error for the operator printable and redacted in lastError", async () => {
    const failing = await waitFor(
      'the failing upstream has tried once',
      () => statusOf(h.gateway, 'failing').lastError,
    );
    expect(failing).toBe(
      'listing its tools failed: answered with an error (-32603): database failed: password=[redacted] at /srv/app/secret.js',
    );
  });
});
