// The client guides (docs/clients/*.md) and the README's "Connect a client" hold JSON that users paste into
// Claude Desktop, Cursor, VS Code and Claude Code. Every such block is parsed and checked for the shape its
// client reads; then the guides' snippets are run the way those clients run them, against a real Bastion.
import { execFile, execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as HttpTransportV2,
} from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioTransportV2 } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as StdioTransportV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport as HttpTransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { z } from 'zod';
import { spawnServer, type CliServer } from '../support/cli-server.js';
import { alive } from '../support/processes.js';

const REPO = path.resolve('.');
const CLI = path.join(REPO, 'dist/cli.js');
const GUIDES_DIR = path.join(REPO, 'docs/clients');
const GUIDES = ['claude-code.md', 'claude-desktop.md', 'cursor.md', 'troubleshooting.md', 'vscode.md'];
/** The server address in every guide; the live runs put the test server's URL in its place, and only that. */
const DOC_URL = 'https://bastion.example.com/mcp';
/** The key placeholder of the Claude Desktop remote entry. */
const KEY_PLACEHOLDER = '<key>';
const readJson = (file: string) =>
  JSON.parse(readFileSync(path.join(REPO, file), 'utf8')) as Record<string, unknown>;
const MCP_REMOTE_VERSION = readJson('node_modules/mcp-remote/package.json').version as string;
const TIMEOUT_MS = 20_000;

// ---- reading the snippets -------------------------------------------------------------------------------

interface Snippet {
  source: string; // docs/clients/<guide>.md or README.md
  guide: string;
  line: number;
  config: Record<string, unknown>;
}

function jsonBlocks(markdown: string, source: string): Snippet[] {
  const fence = /^[ \t]*```jsonc?[ \t]*\n([\s\S]*?)^[ \t]*```[ \t]*$/gm;
  return [...markdown.matchAll(fence)].map((match) => {
    const line = markdown.slice(0, match.index).split('\n').length;
    try {
      // A ```jsonc fence is read as plain JSON too: the guides hold no comments for users to paste.
      const config = JSON.parse(match[1] as string) as Snippet['config'];
      return { source, guide: path.basename(source), line, config };
    } catch (error) {
      throw new Error(`${source}:${line}: not valid JSON: ${(error as Error).message}`, { cause: error });
    }
  });
}

function readmeConnectSection(): string {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Connect a client\n');
  if (start < 0) throw new Error('README.md has no "Connect a client" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

const snippets: Snippet[] = [
  ...readdirSync(GUIDES_DIR)
    .filter((name) => name.endsWith('.md'))
    .flatMap((name) => jsonBlocks(readFileSync(path.join(GUIDES_DIR, name), 'utf8'), `docs/clients/${name}`)),
  ...jsonBlocks(readmeConnectSection(), 'README.md'),
];

// ---- the shape each client reads ------------------------------------------------------------------------

const strings = z.record(z.string(), z.string());
const stdio = (type: z.ZodType) =>
  z.strictObject({ type, command: z.string().min(1), args: z.array(z.string()), env: strings.optional() });
const http = (type: z.ZodType) => z.strictObject({ type, url: z.string(), headers: strings.optional() });
const either = (stdioType: z.ZodType, httpType: z.ZodType) => z.union([stdio(stdioType), http(httpType)]);
const input = z.strictObject({
  type: z.literal('promptString'),
  id: z.string().min(1),
  description: z.string().min(1),
  password: z.boolean().optional(),
});

/** Claude Desktop: command/args only. Cursor: url/headers or command/args. VS Code: `servers`, `type` always. */
const SHAPES: Record<string, z.ZodType> = {
  'claude-desktop.md': z.strictObject({ mcpServers: z.record(z.string(), stdio(z.never().optional())) }),
  'vscode.md': z.strictObject({
    inputs: z.array(input).optional(),
    servers: z.record(z.string(), either(z.literal('stdio'), z.literal('http'))),
  }),
  'claude-code.md': z.strictObject({
    mcpServers: z.record(z.string(), either(z.literal('stdio'), z.literal('http'))),
  }),
};
const DEFAULT_SHAPE = z.strictObject({
  mcpServers: z.record(z.string(), either(z.literal('stdio').optional(), z.literal('http').optional())),
});

interface Entry {
  type?: string;
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  url?: string;
  headers?: Record<string, string>;
}
interface Server {
  snippet: Snippet;
  at: string;
  entry: Entry;
}

const entries = (value: unknown): Record<string, Entry> | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, Entry>)
    : undefined;
const serversOf = (snippet: Snippet): Record<string, Entry> =>
  entries(snippet.config.servers) ?? entries(snippet.config.mcpServers) ?? {};

/** Every problem with a snippet, as `file:line: what`; none when its client would read it as intended. */
function problems(snippet: Snippet): string[] {
  const at = `${snippet.source}:${snippet.line}`;
  const parsed = (SHAPES[snippet.guide] ?? DEFAULT_SHAPE).safeParse(snippet.config);
  if (!parsed.success) return parsed.error.issues.map((i) => `${at}: ${i.path.join('.')}: ${i.message}`);
  const found: string[] = [];
  for (const [name, entry] of Object.entries(serversOf(snippet))) {
    if (entry.url === undefined) continue;
    const url = URL.canParse(entry.url) ? new URL(entry.url) : null;
    if (url?.pathname !== '/mcp') found.push(`${at}: ${name}: the url must end in /mcp`);
    if (url?.href !== DOC_URL && url?.hostname !== '127.0.0.1')
      found.push(`${at}: ${name}: the url must be ${DOC_URL} or a loopback address`);
  }
  // VS Code expands ${input:ID} only for an `inputs` entry with that id.
  const declared = ((snippet.config.inputs ?? []) as Array<{ id: string }>).map((i) => i.id);
  const used = [...JSON.stringify(serversOf(snippet)).matchAll(/\$\{input:([^}]+)\}/g)].map((m) => m[1]);
  for (const id of used)
    if (!declared.includes(id as string)) found.push(`${at}: \${input:${id}} is not in inputs`);
  for (const id of declared) if (!used.includes(id)) found.push(`${at}: input "${id}" is never used`);
  if (/bst_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}/.test(JSON.stringify(snippet.config)))
    found.push(`${at}: holds something shaped like a real API key`);
  return found;
}

/**
 * What a stdio entry really runs, past the wrappers the guides use: `cmd /c` (Windows: runs the rest of the
 * line as written) and `npx [options]` (runs a package's bin). `options` are npx's own flags.
 */
function unwrap(entry: Entry): { program: string; rest: string[]; viaNpx: boolean; options: string[] } {
  let argv = [entry.command ?? '', ...(entry.args ?? [])];
  if (argv[0] === 'cmd' && argv[1]?.toLowerCase() === '/c') argv = argv.slice(2);
  if (argv[0] !== 'npx')
    return { program: argv[0] as string, rest: argv.slice(1), viaNpx: false, options: [] };
  const first = argv.findIndex((arg, i) => i > 0 && !arg.startsWith('-'));
  if (first < 0) return { program: '', rest: [], viaNpx: true, options: argv.slice(1) };
  return {
    program: argv[first] as string,
    rest: argv.slice(first + 1),
    viaNpx: true,
    options: argv.slice(1, first),
  };
}

const guideServers: Server[] = snippets
  .filter((s) => s.source.startsWith('docs/clients/'))
  .flatMap((snippet) =>
    Object.entries(serversOf(snippet)).map(([name, entry]) => ({
      snippet,
      at: `${snippet.source}:${snippet.line} ${name}`,
      entry,
    })),
  );
const remoteEntries = guideServers.filter((s) => unwrap(s.entry).program.startsWith('mcp-remote'));
const stdioEntries = guideServers.filter((s) => s.entry.command && unwrap(s.entry).program === 'bastion');
const httpEntries = guideServers.filter((s) => s.entry.url && s.entry.headers);
const cases = (list: Server[]) => list.map((s) => [s.at, s] as const);

// ---- processes ------------------------------------------------------------------------------------------

/** Every process below `pid` (npx starts a shell, which starts mcp-remote). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const row of execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' }).trim().split('\n')) {
    const [child, parent] = row.trim().split(/\s+/).map(Number) as [number, number];
    children.set(parent, [...(children.get(parent) ?? []), child]);
  }
  const found: number[] = [];
  for (const queue = [pid]; queue.length > 0;) {
    const next = children.get(queue.shift() as number) ?? [];
    found.push(...next);
    queue.push(...next);
  }
  return found;
}

/** The client closes the pipe (the child exits on EOF); whatever is left of its process tree is killed by PID. */
async function stopStdio(
  client: { close(): Promise<void> },
  transport: { pid: number | null },
): Promise<void> {
  const tree = transport.pid === null ? [] : descendants(transport.pid);
  await client.close().catch(() => undefined);
  for (const pid of tree) if (alive(pid)) process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && tree.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  for (const pid of tree) if (alive(pid)) process.kill(pid, 'SIGKILL');
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

// ---- the checks -----------------------------------------------------------------------------------------

describe('client guides: every JSON snippet', () => {
  it('finds every guide, and JSON in each client guide and in the README', () => {
    expect(readdirSync(GUIDES_DIR).sort()).toEqual(GUIDES);
    for (const guide of ['claude-desktop.md', 'cursor.md', 'vscode.md', 'claude-code.md', 'README.md'])
      expect([guide, snippets.some((s) => s.guide === guide)]).toEqual([guide, true]);
  });

  it.each(snippets.map((s) => [`${s.source}:${s.line}`, s] as const))(
    '%s has the shape its client reads',
    (_at, snippet) => expect(problems(snippet)).toEqual([]),
  );

  it('gives Claude Desktop local and remote entries, and nothing else', () => {
    const desktop = guideServers.filter((s) => s.snippet.guide === 'claude-desktop.md');
    for (const s of desktop)
      expect([s.at, remoteEntries.includes(s) || stdioEntries.includes(s)]).toEqual([s.at, true]);
    expect(remoteEntries.length).toBeGreaterThan(0);
    expect(stdioEntries.filter((s) => desktop.includes(s)).length).toBeGreaterThan(0);
  });

  it('writes the mcp-remote entries in the Windows-safe form, pinned to the tested version', () => {
    for (const s of remoteEntries) {
      const { program, rest, options } = unwrap(s.entry);
      expect([s.at, program, options]).toEqual([s.at, `mcp-remote@${MCP_REMOTE_VERSION}`, ['-y']]);
      // Claude Desktop on Windows splits arguments at spaces: none may hold one.
      expect([s.at, rest]).toEqual([s.at, [DOC_URL, '--header', 'Authorization:${AUTH_HEADER}']]);
      expect([s.at, s.entry.env]).toEqual([s.at, { AUTH_HEADER: `Bearer ${KEY_PLACEHOLDER}` }]);
    }
  });

  it('starts Bastion over stdio on a named workspace, and never lets npx fetch a package', () => {
    expect(stdioEntries.length).toBeGreaterThanOrEqual(4);
    for (const s of stdioEntries) {
      const { rest, viaNpx, options } = unwrap(s.entry);
      expect([s.at, rest.slice(0, 2), rest.length]).toEqual([s.at, ['stdio', '--workspace'], 3]);
      // The npm package called "bastion" is another program: npx must run the installed Bastion or fail.
      if (viaNpx) expect([s.at, options]).toEqual([s.at, ['--no-install']]);
    }
  });

  it('takes the key from the environment (Cursor), an input (VS Code) or an expanded variable (Claude Code)', () => {
    const header = (guide: string) =>
      httpEntries.filter((s) => s.snippet.guide === guide).map((s) => [s.entry.url, s.entry.headers]);
    const expected = (value: string) => [[DOC_URL, { Authorization: value }]];
    expect(header('cursor.md')).toEqual(expected('Bearer ${env:BASTION_API_KEY}'));
    expect(header('vscode.md')).toEqual(expected('Bearer ${input:bastion-api-key}'));
    expect(header('claude-code.md')).toEqual(expected('Bearer ${BASTION_API_KEY}'));
  });
});

describe('client guides: the snippets against a running Bastion', () => {
  const note = `guide check ${process.pid}\n`;
  let base: string;
  let workspace: string;
  let home: string;
  let dataDir: string;
  let server: CliServer;
  let key: string;
  let wrongKey: string;

  beforeAll(async () => {
    base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-guides-')));
    workspace = path.join(base, 'workspace');
    home = path.join(base, 'home');
    dataDir = path.join(base, 'data');
    for (const dir of [path.join(workspace, 'notes'), home, dataDir]) mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(workspace, 'notes/hello.txt'), note);
    const keysFile = path.join(dataDir, 'keys.json');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [CLI, 'keys', 'create', '--client', 'guides', '--scopes', 'files:read', '--keys-file', keysFile],
      { timeout: TIMEOUT_MS },
    );
    key = stdout.trimEnd().split('\n').at(-1) as string;
    expect(key).toMatch(/^bst_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    // The same id with another secret: well formed, found, and refused.
    wrongKey = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    server = await spawnServer(workspace, dataDir, { BASTION_AUTH: 'api-key' });
  }, 30_000);

  afterAll(async () => {
    server?.child.kill('SIGTERM');
    await server?.exited;
    if (base) rmSync(base, { recursive: true, force: true });
  });

  interface Session {
    listTools(): Promise<{ tools: Array<{ name: string }> }>;
    callTool(params: { name: string; arguments: Record<string, unknown> }): Promise<unknown>;
    close(): Promise<void>;
  }

  async function expectWorkspaceServed(session: Session): Promise<void> {
    const names = (await withTimeout(session.listTools(), 'tools/list')).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['read_text_file', 'list_directory']));
    const read = (await withTimeout(
      session.callTool({ name: 'read_text_file', arguments: { path: 'notes/hello.txt' } }),
      'tools/call',
    )) as { content: Array<{ text?: string }>; isError?: boolean };
    expect([read.isError ?? false, read.content[0]?.text]).toEqual([false, note]);
  }

  /** Credentials Bastion refused as `unknown_key`: a key that arrived, well formed, and did not match. */
  function refusedKeys(): number {
    let log: string;
    try {
      log = readFileSync(path.join(dataDir, 'audit/audit.jsonl'), 'utf8');
    } catch {
      return 0; // nothing recorded yet
    }
    const records = log
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { kind: string; code?: string });
    return records.filter((r) => r.kind === 'auth_failure' && r.code === 'unknown_key').length;
  }

  async function expectRefusalRecorded(before: number): Promise<void> {
    for (let i = 0; i < 40 && refusedKeys() <= before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(refusedKeys()).toBeGreaterThan(before);
  }

  /**
   * A Claude Desktop remote entry, run as Claude Desktop runs it: its command, args and env, with only the
   * placeholder URL and key replaced. `cmd /c` is dropped here: it only hands the rest to the Windows shell.
   * npx runs in the repository, where it finds the installed mcp-remote without the network; HOME and
   * MCP_REMOTE_CONFIG_DIR are a scratch directory, so nothing is written to ~/.mcp-auth.
   */
  async function runRemote(
    entry: Entry,
    apiKey: string,
  ): Promise<{ session: Session; stop: () => Promise<void> }> {
    const argv = [entry.command as string, ...(entry.args ?? [])];
    const [command, ...args] = (argv[0] === 'cmd' ? argv.slice(2) : argv).map((a) =>
      a === DOC_URL ? server.url : a,
    );
    const env = Object.entries(entry.env ?? {}).map(([name, value]) => [
      name,
      value.replace(KEY_PLACEHOLDER, apiKey),
    ]);
    const transport = new StdioTransportV1({
      command: command as string,
      args,
      cwd: REPO,
      stderr: 'pipe',
      env: {
        ...Object.fromEntries(env),
        HOME: home,
        MCP_REMOTE_CONFIG_DIR: path.join(home, '.mcp-auth'),
        npm_config_offline: 'true',
        npm_config_update_notifier: 'false',
      },
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const client = new ClientV1({ name: 'claude-ai', version: '0.1.0' });
    const stop = () => stopStdio(client, transport);
    try {
      await withTimeout(client.connect(transport, { timeout: TIMEOUT_MS }), 'initialize through mcp-remote');
    } catch (error) {
      await stop();
      const said = stderr.replaceAll(apiKey, '***');
      throw new Error(`${(error as Error).message}\nmcp-remote said:\n${said}`, { cause: error });
    }
    return { session: client as unknown as Session, stop };
  }

  it.each(cases(remoteEntries))(
    'Claude Desktop through mcp-remote (%s) lists and calls the tools with the key from env',
    async (_at, s) => {
      const { session, stop } = await runRemote(s.entry, key);
      try {
        await expectWorkspaceServed(session);
      } finally {
        await stop();
      }
    },
    60_000,
  );

  it.each(cases(remoteEntries))(
    'Claude Desktop through mcp-remote (%s) lists nothing with a wrong key, which did reach Bastion',
    async (_at, s) => {
      const before = refusedKeys();
      const listed = await runRemote(s.entry, wrongKey).then(
        async ({ session, stop }) => {
          try {
            return (await withTimeout(session.listTools(), 'tools/list')).tools.length;
          } catch {
            return 0;
          } finally {
            await stop();
          }
        },
        () => 0, // mcp-remote gave up during initialize, as it should
      );
      expect(listed).toBe(0);
      await expectRefusalRecorded(before);
    },
    60_000,
  );

  /**
   * A local stdio entry. `npx --no-install bastion ARGS` (directly, through `cmd /c`, or as a global `bastion`)
   * runs the installed package's `bastion` bin, which package.json maps to dist/cli.js: `node dist/cli.js ARGS`
   * is the same program with the same arguments. Only the placeholder workspace is replaced. HOME is a scratch
   * directory: stdio keeps its audit log under ~/.local/state/bastion.
   */
  it.each(cases(stdioEntries))(
    'the stdio entry %s serves the named workspace',
    async (_at, s) => {
      expect((readJson('package.json').bin as Record<string, string>).bastion).toBe('dist/cli.js');
      const { rest } = unwrap(s.entry);
      const args = rest.map((arg, i) => (rest[i - 1] === '--workspace' ? workspace : arg));
      const transport = new StdioTransportV2({
        command: process.execPath,
        args: [CLI, ...args],
        cwd: workspace,
        stderr: 'pipe',
        env: { ...s.entry.env, HOME: home },
      });
      const client = new ClientV2({ name: `guide-${s.snippet.guide}`, version: '1.0.0' });
      try {
        await withTimeout(client.connect(transport), 'initialize over stdio');
        await expectWorkspaceServed(client as unknown as Session);
      } finally {
        await stopStdio(client, transport);
      }
    },
    30_000,
  );

  /** What each client puts in place of its variables: Cursor `${env:X}`, VS Code `${input:ID}`, Claude Code `${X}`. */
  function expand(value: string, snippet: Snippet, apiKey: string): string {
    const declared = ((snippet.config.inputs ?? []) as Array<{ id: string }>).map((i) => i.id);
    const expanders: Record<string, () => string> = {
      'cursor.md': () => value.replace(/\$\{env:BASTION_API_KEY\}/g, apiKey),
      'vscode.md': () =>
        value.replace(/\$\{input:([^}]+)\}/g, (v, id: string) => (declared.includes(id) ? apiKey : v)),
      'claude-code.md': () => value.replace(/\$\{BASTION_API_KEY(:-[^}]*)?\}/g, apiKey),
    };
    const expanded = expanders[snippet.guide]?.();
    if (expanded === undefined || expanded.includes('${'))
      throw new Error(`${snippet.source}: "${value}" holds a variable its client would not expand`);
    return expanded;
  }

  /** Cursor and Claude Code over the v1 SDK transport (2025 revisions), VS Code over the v2 client. */
  async function connectHttp(s: Server, apiKey: string): Promise<Session> {
    const headers = Object.fromEntries(
      Object.entries(s.entry.headers ?? {}).map(([name, value]) => [name, expand(value, s.snippet, apiKey)]),
    );
    const url = new URL(s.entry.url === DOC_URL ? server.url : (s.entry.url as string));
    if (s.snippet.guide === 'vscode.md') {
      const client = new ClientV2({ name: 'guide-vscode', version: '1.0.0' });
      await withTimeout(client.connect(new HttpTransportV2(url, { requestInit: { headers } })), 'initialize');
      return client as unknown as Session;
    }
    const client = new ClientV1({ name: `guide-${s.snippet.guide}`, version: '1.0.0' });
    await withTimeout(client.connect(new HttpTransportV1(url, { requestInit: { headers } })), 'initialize');
    return client as unknown as Session;
  }

  it.each(cases(httpEntries))(
    'the HTTP entry %s connects with its header, and a wrong key does not',
    async (_at, s) => {
      const session = await connectHttp(s, key);
      try {
        await expectWorkspaceServed(session);
      } finally {
        await session.close();
      }
      const before = refusedKeys();
      await expect(connectHttp(s, wrongKey)).rejects.toThrow();
      await expectRefusalRecorded(before);
    },
    30_000,
  );
});
