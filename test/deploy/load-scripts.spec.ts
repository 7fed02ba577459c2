import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnServer, type CliServer } from '../support/cli-server.js';

// The k6 scripts in load/ are plain JavaScript for k6's runtime, not Node: these checks read them as k6
// would (imports), evaluate their options, drive their request builders against a real server, and run the
// entry scripts' setup() and default function under a stand-in for the k6 modules.

const LOAD = path.resolve('load');
const ENTRIES = ['smoke', 'average', 'stress', 'spike', 'soak'];
/** Read by bench/ in Node: must not import k6, directly or through another file. */
const K6_FREE = ['lib/protocol.js', 'lib/workload.js', 'lib/scenarios.js', 'lib/config.js'];
const THRESHOLDS = {
  http_req_failed: ['rate<0.01'],
  http_req_duration: ['p(95)<200'],
  checks: ['rate>0.99'],
};
const CONVERSE_THRESHOLD = { 'http_req_duration{tool:converse}': ['p(95)<200'] };
/** Globals of Node (or browsers) that k6 does not have. */
const FOREIGN_GLOBALS =
  /\b(process\.|require\(|Buffer\.|__dirname|__filename|fetch\(|setTimeout\(|setInterval\()/;

interface Step {
  label: string;
  kind: 'initialize' | 'notification' | 'tool';
  revision: string;
  tags: Record<string, string>;
  request: { headers: Record<string, string>; body: string };
  expect: string[];
  converse?: 'new' | 'continue';
}
interface VuState {
  iteration: number;
  legacyReady: boolean;
  conversationId: string | null;
  turns: number;
}
interface Evaluation {
  checks: { name: string; ok: boolean }[];
  problem: string | null;
  structured: { conversation_id?: string; answer?: string } | null;
}
interface ToolRead {
  problem: string | null;
  rpcError: boolean;
  toolError: boolean;
  text: string;
  structured: { conversation_id?: string; answer?: string } | null;
}
interface Protocol {
  LEGACY: string;
  MODERN: string;
  initializeRequest(id?: number, apiKey?: string): Step['request'];
  initializedNotification(apiKey?: string): Step['request'];
  toolCallRequest(
    revision: string,
    name: string,
    args: object,
    options?: { apiKey?: string },
  ): Step['request'];
  parseRpc(body: string): { result?: unknown; error?: unknown; method?: string };
  readToolResult(body: string): ToolRead;
}
interface Workload {
  BENCH_PATH: string;
  TURNS_PER_CONVERSATION: number;
  benchText(): string;
  newVuState(): VuState;
  seedSteps(settings: object): Step[];
  iterationSteps(state: VuState, settings: object): Step[];
  evaluate(step: Step, status: number, body: string, state?: VuState): Evaluation;
  advance(state: VuState, step: Step, evaluation: Evaluation): void;
}
interface Scenarios {
  SCENARIOS: Record<
    string,
    { peakVus: number; stages: { seconds: number; target: number; hold?: boolean }[] }
  >;
  thresholdsFor(mix: string): Record<string, string[]>;
  stagesFor(
    name: string,
    overrides?: { vus?: number; holdSeconds?: number },
  ): { startVus: number; stages: { seconds: number; target: number }[] };
}
interface Config {
  mcpUrl: string;
  apiKey?: string;
}
interface ConfigModule {
  loadConfig(env: Record<string, string | undefined>): Config;
  buildOptions(name: string, settings?: Config): K6Options;
}
interface McpModule {
  seed(settings?: Config): void;
}
interface K6Options {
  scenarios: Record<
    string,
    { executor: string; startVUs: number; stages: { duration: string; target: number }[] }
  >;
  thresholds: Record<string, string[]>;
}
interface EntryModule {
  options: K6Options;
  setup(): void;
  default(): void;
}

const load = <T>(file: string) => import(path.join(LOAD, file)) as Promise<T>;

function jsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return jsFiles(full);
    return name.endsWith('.js') ? [full] : [];
  });
}

/**
 * Every module specifier of a file: static imports and re-exports, side-effect imports, import() calls.
 * Comments are left out: a JSDoc `import('k6/options')` is a type for tsc, never loaded.
 */
function specifiers(text: string): string[] {
  const source = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  for (const pattern of [
    /^\s*(?:import|export)\s[^;]*?\sfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\s*\(\s*['"]?([^'")]*)/g,
  ]) {
    for (const match of source.matchAll(pattern)) found.push(match[1] as string);
  }
  return found;
}

describe('the k6 scripts in load/', () => {
  const files = jsFiles(LOAD);

  it('has an entry script for every scenario shape, and a shape for every entry script', async () => {
    const { SCENARIOS } = await load<Scenarios>('lib/scenarios.js');
    expect(Object.keys(SCENARIOS).sort()).toEqual([...ENTRIES].sort());
    const entries = readdirSync(LOAD).filter((name) => name.endsWith('.js'));
    expect(entries.map((name) => name.replace(/\.js$/, '')).sort()).toEqual([...ENTRIES].sort());
  });

  it.each(files.map((file) => [path.relative(LOAD, file), file]))(
    '%s imports only k6 modules and files under load/, and opts in to type checking',
    (_name, file) => {
      const source = readFileSync(file, 'utf8');
      expect(source.startsWith('// @ts-check\n')).toBe(true);
      expect(source).not.toMatch(FOREIGN_GLOBALS);
      for (const specifier of specifiers(source)) {
        if (specifier === 'k6' || specifier.startsWith('k6/')) continue;
        // k6 resolves a relative import as written: it needs the extension and must stay inside load/.
        expect(specifier).toMatch(/^\.{1,2}\/.*\.js$/);
        const target = path.resolve(path.dirname(file), specifier);
        expect(target.startsWith(LOAD + path.sep)).toBe(true);
        expect(statSync(target).isFile()).toBe(true);
      }
    },
  );

  it.each(K6_FREE)('%s does not import k6, directly or through another file', (start) => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const specifier of specifiers(readFileSync(file, 'utf8'))) {
        expect(specifier.startsWith('.')).toBe(true);
        visit(path.resolve(path.dirname(file), specifier));
      }
    };
    visit(path.join(LOAD, start));
    expect(seen.size).toBeGreaterThan(0);
  });

  it('refuses bad settings, naming the variable without echoing its value', async () => {
    const { loadConfig } = await load<ConfigModule>('lib/config.js');
    expect(() => loadConfig({ VUS: '0' })).toThrow(/VUS/);
    expect(() => loadConfig({ THINK_TIME: 'soon' })).toThrow(/THINK_TIME/);
    expect(() => loadConfig({ DURATION: '5 minutes' })).toThrow(/^(?!.*5 minutes).*DURATION/);
    expect(() => loadConfig({ REVISION: '2024-11-05' })).toThrow(/REVISION/);
    expect(() => loadConfig({ MIX: 'everything' })).toThrow(/MIX/);
    expect(() => loadConfig({ BASE_URL: 'bst_secret_value' })).toThrow(/^(?!.*bst_secret_value).*BASE_URL/);
    expect(loadConfig({ BASE_URL: 'http://127.0.0.1:9/' }).mcpUrl).toBe('http://127.0.0.1:9/mcp');
  });

  it('leaves converse and its threshold out with MIX=files', async () => {
    const { loadConfig, buildOptions } = await load<ConfigModule>('lib/config.js');
    const workload = await load<Workload>('lib/workload.js');
    expect(buildOptions('average', loadConfig({ MIX: 'files' })).thresholds).toEqual(THRESHOLDS);
    const state = workload.newVuState();
    const tools = [0, 1, 2].flatMap(() =>
      workload.iterationSteps(state, { revision: 'both', mix: 'files' }).map((step) => step.tags.tool),
    );
    expect(tools).toContain('read_text_file');
    expect(tools).not.toContain('converse');
  });
});

describe('against a running Bastion (api-key mode)', () => {
  let base: string;
  let server: CliServer;
  let key: string;
  let readOnlyKey: string;
  let protocol: Protocol;
  let workload: Workload;
  let baseUrl: string;
  const requests: { url: string; tags: Record<string, string>; body: string }[] = [];
  const checks: { name: string; ok: boolean; tags: Record<string, string> }[] = [];

  const createKey = (dataDir: string, client: string, scopes: string) =>
    execFileSync(
      process.execPath,
      ['dist/cli.js', 'keys', 'create', '--client', client, '--scopes', scopes, '--data-dir', dataDir],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .pop() as string;

  beforeAll(async () => {
    base = mkdtempSync(path.join(os.tmpdir(), 'bastion-load-'));
    const dataDir = path.join(base, 'data');
    key = createKey(dataDir, 'load', 'files:read,files:write,agent');
    readOnlyKey = createKey(dataDir, 'load-read-only', 'files:read,agent');
    server = await spawnServer(path.join(base, 'ws'), dataDir, {
      BASTION_AUTH: 'api-key',
      BASTION_LOG_LEVEL: 'warn',
    });
    baseUrl = server.url.replace(/\/mcp$/, '');
    protocol = await load<Protocol>('lib/protocol.js');
    workload = await load<Workload>('lib/workload.js');
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  async function send(request: Step['request']) {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
    });
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      body: await response.text(),
    };
  }

  async function run(step: Step, state?: VuState) {
    const { status, body } = await send(step.request);
    return workload.evaluate(step, status, body, state);
  }

  it('seeds k6/ in the workspace with write_file', async () => {
    for (const step of workload.seedSteps({ revision: 'both', mix: 'all', apiKey: key })) {
      const evaluation = await run(step);
      expect(evaluation).toMatchObject({ problem: null });
      expect(evaluation.checks.every((check) => check.ok)).toBe(true);
    }
    expect(readFileSync(path.join(base, 'ws', workload.BENCH_PATH), 'utf8')).toBe(workload.benchText());
  });

  it('answers 2025-06-18 initialize, notifications/initialized and tools/call', async () => {
    const init = await send(protocol.initializeRequest(1, key));
    expect(init.status).toBe(200);
    expect(protocol.parseRpc(init.body).result).toMatchObject({ protocolVersion: protocol.LEGACY });
    expect((await send(protocol.initializedNotification(key))).status).toBe(202);
    const read = await send(
      protocol.toolCallRequest(
        protocol.LEGACY,
        'read_text_file',
        { path: workload.BENCH_PATH },
        { apiKey: key },
      ),
    );
    expect(read.status).toBe(200);
    expect(protocol.readToolResult(read.body)).toMatchObject({ problem: null, text: workload.benchText() });
  });

  it('answers 2026-07-28 tools/call without a handshake, with the _meta envelope and Mcp-Method/Mcp-Name', async () => {
    const request = protocol.toolCallRequest(
      protocol.MODERN,
      'search_files',
      { path: 'k6', pattern: '**/*.txt' },
      { apiKey: key },
    );
    expect(request.headers).toMatchObject({ 'mcp-method': 'tools/call', 'mcp-name': 'search_files' });
    expect(JSON.parse(request.body).params._meta['io.modelcontextprotocol/protocolVersion']).toBe(
      protocol.MODERN,
    );
    const answer = await send(request);
    expect(answer.status).toBe(200);
    expect(protocol.readToolResult(answer.body)).toMatchObject({ problem: null, text: workload.BENCH_PATH });
  });

  it.each(['2025-06-18', '2026-07-28'])(
    'converse in %s starts a conversation and continues it',
    async (revision) => {
      const first = protocol.readToolResult(
        (
          await send(
            protocol.toolCallRequest(
              revision,
              'converse',
              { prompt: `read ${workload.BENCH_PATH}` },
              { apiKey: key },
            ),
          )
        ).body,
      );
      expect(first.problem).toBeNull();
      expect(first.structured?.answer).toContain(workload.benchText());
      const id = first.structured?.conversation_id as string;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      const next = protocol.readToolResult(
        (
          await send(
            protocol.toolCallRequest(
              revision,
              'converse',
              { prompt: 'list files in k6', conversation_id: id },
              { apiKey: key },
            ),
          )
        ).body,
      );
      expect(next).toMatchObject({ problem: null, structured: { conversation_id: id } });
      expect(next.structured?.answer).toContain('[FILE] notes.md');
    },
  );

  it('reads an answer sent as an SSE stream, progress first', async () => {
    const request = protocol.toolCallRequest(
      protocol.LEGACY,
      'converse',
      { prompt: 'list files in k6' },
      { apiKey: key },
    );
    const message = JSON.parse(request.body);
    message.params._meta = { progressToken: 'load-test' };
    const answer = await send({ ...request, body: JSON.stringify(message) });
    expect(answer.contentType).toMatch(/^text\/event-stream/);
    expect(answer.body).toContain('notifications/progress');
    expect(protocol.readToolResult(answer.body)).toMatchObject({ problem: null });
    expect(protocol.readToolResult(answer.body).structured?.answer).toContain('bench.txt');
  });

  it('fails the checks of a refused key, a JSON-RPC error, a tool error and the wrong text', async () => {
    const step = (request: Step['request'], expect: string[] = []): Step => ({
      label: 'probe',
      kind: 'tool',
      revision: protocol.LEGACY,
      tags: {},
      request,
      expect,
    });
    const failed = (evaluation: Evaluation) =>
      evaluation.checks.filter((check) => !check.ok).map((c) => c.name);
    const read = (args: object, apiKey?: string) =>
      protocol.toolCallRequest(protocol.LEGACY, 'read_text_file', args, { apiKey });

    const unauthenticated = await run(step(read({ path: workload.BENCH_PATH })));
    expect(unauthenticated.problem).toBe('HTTP 401');
    expect(failed(unauthenticated)).toContain('probe: HTTP 200');

    const rpcError = await run(step(read({ path: 42 }, key)));
    expect(rpcError.problem).toMatch(/^json-rpc error -32602/);
    expect(failed(rpcError)).toEqual([
      'probe: JSON-RPC result without error',
      'probe: isError is false',
      'probe: holds the expected text',
    ]);

    const toolError = await run(step(read({ path: 'k6/missing.txt' }, key)));
    expect(toolError.problem).toMatch(/^tool error: /);
    expect(failed(toolError)).toEqual(['probe: isError is false', 'probe: holds the expected text']);

    const wrongText = await run(step(read({ path: workload.BENCH_PATH }, key), ['not in the file']));
    expect(failed(wrongText)).toEqual(['probe: holds the expected text']);
  });

  it('runs a virtual user through both revisions with every check passing, rotating its conversations', async () => {
    const state = workload.newVuState();
    const conversations = new Set<string>();
    const labels = new Set<string>();
    const iterations = workload.TURNS_PER_CONVERSATION * 2 + 1;
    for (let i = 0; i < iterations; i++) {
      for (const step of workload.iterationSteps(state, { revision: 'both', mix: 'all', apiKey: key })) {
        const evaluation = await run(step, state);
        expect({ step: step.label, revision: step.revision, problem: evaluation.problem }).toEqual({
          step: step.label,
          revision: step.revision,
          problem: null,
        });
        labels.add(`${step.label} ${step.revision}`);
        workload.advance(state, step, evaluation);
        if (state.conversationId) conversations.add(state.conversationId);
      }
    }
    expect(state).toMatchObject({ iteration: iterations, legacyReady: true });
    expect(conversations.size).toBe(3);
    for (const label of [
      'tools/call read_text_file',
      'tools/call list_directory',
      'tools/call search_files',
      'tools/call converse',
    ]) {
      expect(labels).toContain(`${label} ${protocol.LEGACY}`);
      expect(labels).toContain(`${label} ${protocol.MODERN}`);
    }
    expect(labels).toContain(`initialize ${protocol.LEGACY}`);
  });

  describe('entry scripts under a stand-in for the k6 modules', () => {
    const modules: Record<string, EntryModule> = {};
    let mcp: McpModule;
    let config: ConfigModule;
    let scenarios: Scenarios;

    beforeAll(async () => {
      // lib/config.js reads __ENV when first imported: start from a fresh module registry.
      jest.resetModules();
      // k6's http.post is synchronous: a child process makes each request with fetch.
      const post = (
        url: string,
        body: string,
        params: { headers: Record<string, string>; tags: Record<string, string> },
      ) => {
        requests.push({ url, tags: params.tags, body });
        const script =
          'let b="";process.stdin.on("data",(c)=>(b+=c)).on("end",async()=>{' +
          'const r=await fetch(process.argv[1],{method:"POST",headers:JSON.parse(process.argv[2]),body:b});' +
          'process.stdout.write(JSON.stringify({status:r.status,body:await r.text()}))})';
        const out = execFileSync(process.execPath, ['-e', script, url, JSON.stringify(params.headers)], {
          input: body,
          encoding: 'utf8',
          timeout: 20_000,
        });
        return JSON.parse(out) as { status: number; body: string };
      };
      jest.unstable_mockModule('k6/http', () => ({ default: { post } }), { virtual: true });
      jest.unstable_mockModule(
        'k6',
        () => ({
          check: (
            value: unknown,
            sets: Record<string, (v: unknown) => boolean>,
            tags: Record<string, string>,
          ) => {
            let all = true;
            for (const [name, fn] of Object.entries(sets)) {
              const ok = fn(value);
              checks.push({ name, ok, tags });
              all = all && ok;
            }
            return all;
          },
          fail: (message: string) => {
            throw new Error(message);
          },
          sleep: () => undefined,
        }),
        { virtual: true },
      );
      (globalThis as { __ENV?: Record<string, string> }).__ENV = {
        BASE_URL: baseUrl,
        API_KEY: key,
        VUS: '7',
        DURATION: '42s',
        THINK_TIME: '0',
      };
      for (const name of ENTRIES) modules[name] = await load<EntryModule>(`${name}.js`);
      mcp = await load<McpModule>('lib/mcp.js');
      config = await load<ConfigModule>('lib/config.js');
      scenarios = await load<Scenarios>('lib/scenarios.js');
    });

    afterAll(() => {
      delete (globalThis as { __ENV?: unknown }).__ENV;
    });

    it.each(ENTRIES)(
      '%s exports the thresholds and the shape of lib/scenarios.js, sized by VUS and DURATION',
      (name) => {
        const { options } = modules[name] as EntryModule;
        expect(options.thresholds).toEqual({ ...THRESHOLDS, ...CONVERSE_THRESHOLD });
        expect(scenarios.thresholdsFor('all')).toEqual(options.thresholds);
        const shape = scenarios.stagesFor(name, { vus: 7, holdSeconds: 42 });
        expect(Object.keys(options.scenarios)).toEqual([name]);
        expect(options.scenarios[name]).toMatchObject({
          executor: 'ramping-vus',
          startVUs: shape.startVus,
          stages: shape.stages.map((stage) => ({ duration: `${stage.seconds}s`, target: stage.target })),
        });
        // VUS is the peak, DURATION the steady stage.
        expect(Math.max(...(options.scenarios[name]?.stages ?? []).map((stage) => stage.target))).toBe(7);
        expect(options.scenarios[name]?.stages.map((stage) => stage.duration)).toContain('42s');
        expect(shape.stages.length).toBe(scenarios.SCENARIOS[name]?.stages.length);
      },
    );

    it('smoke: setup() seeds and the default function passes every check in both revisions', () => {
      const smoke = modules.smoke as EntryModule;
      rmSync(path.join(base, 'ws', 'k6'), { recursive: true, force: true });
      smoke.setup();
      expect(readFileSync(path.join(base, 'ws', workload.BENCH_PATH), 'utf8')).toBe(workload.benchText());
      // Three iterations: 2025-06-18 with its handshake, then 2026-07-28, then 2025-06-18 again.
      for (let i = 0; i < 3; i++) smoke.default();
      expect(requests).toHaveLength(3 + 2 + 3 * 4);
      expect(checks).toHaveLength(3 * 4 + 3 + 1 + 3 * 4 * 4);
      expect(checks.filter((check) => !check.ok)).toEqual([]);
      expect(new Set(requests.map((request) => request.url))).toEqual(new Set([server.url]));
      const names = new Set(requests.map((request) => `${request.tags.name} ${request.tags.revision}`));
      for (const tool of ['read_text_file', 'list_directory', 'search_files', 'converse']) {
        expect(names).toContain(`tools/call ${tool} ${protocol.LEGACY}`);
        expect(names).toContain(`tools/call ${tool} ${protocol.MODERN}`);
      }
      expect(names).toContain(`initialize ${protocol.LEGACY}`);
      // One conversation: started in the first iteration, continued in the next two.
      const continued = requests.filter((request) => request.body.includes('"conversation_id"'));
      expect(continued).toHaveLength(2);
      expect(checks.filter((check) => check.tags.tool === 'converse')).toHaveLength(3 * 4);
    }, 60_000);

    it('setup() stops the run when the key cannot write', () => {
      const settings = config.loadConfig({ BASE_URL: baseUrl, API_KEY: readOnlyKey });
      expect(() => mcp.seed(settings)).toThrow(
        /seeding the workspace failed at tools\/call create_directory .*files:write/,
      );
      expect(() => mcp.seed(config.loadConfig({ BASE_URL: baseUrl }))).toThrow(/HTTP 401/);
    });
  });
});
