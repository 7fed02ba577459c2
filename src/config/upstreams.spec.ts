import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { keyRecord } from '../auth/key-store.js';
import { isScope, localPrincipal } from '../auth/principal.js';
import { ConfigError } from './config.errors.js';
import { loadConfig } from './config.loader.js';
import { upstreamScopes } from './upstreams.schema.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const tmp = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-upstreams-'));
  dirs.push(dir);
  return dir;
};

/** A working directory whose config/mcp.json holds `content` (JSON-encoded unless it is a string). */
function withMcpJson(content: unknown): string {
  const dir = tmp();
  mkdirSync(path.join(dir, 'config'));
  const text = typeof content === 'string' ? content : JSON.stringify(content);
  writeFileSync(path.join(dir, 'config', 'mcp.json'), text);
  return dir;
}

const load = (content: unknown, env: NodeJS.ProcessEnv = {}) =>
  loadConfig({ cwd: withMcpJson(content), env });

/** The message of the ConfigError that loading throws. */
function problemOf(content: unknown, env: NodeJS.ProcessEnv = {}): string {
  try {
    load(content, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('the configuration was accepted');
}

describe('upstreams in config/mcp.json', () => {
  it('reads Claude Desktop mcpServers as stdio upstreams with a name, scope, prefix and defaults', () => {
    const { upstreams } = load({
      mcpServers: {
        memory: {
          command: 'npx',
          args: ['-y', '@modelcontextprotocol/server-memory'],
          env: { MEMORY_FILE_PATH: '/tmp/memory.json' },
        },
      },
    });
    expect(upstreams).toEqual([
      {
        name: 'memory',
        type: 'stdio',
        command: 'npx',
        args: ['-y', '@modelcontextprotocol/server-memory'],
        env: { MEMORY_FILE_PATH: '/tmp/memory.json' },
        headers: {},
        enabled: true,
        timeoutMs: 30_000,
        maxRetries: 2,
        healthCheckIntervalMs: 30_000,
        breakerFailures: 3,
        breakerHalfOpenMs: 10_000,
        scope: 'upstream:memory',
        tools: { deny: [] },
        prefix: 'memory_',
        pool: 2,
      },
    ]);
  });

  it('reads VS Code servers of type http with headers, and the streamable-http aliases', () => {
    const { upstreams } = load({
      servers: {
        github: {
          type: 'http',
          url: 'https://api.example/mcp',
          headers: { Authorization: 'Bearer abc', 'X-Trace': '1' },
        },
        docs: { type: 'streamable-http', url: 'http://127.0.0.1:9000/mcp' },
        wiki: { type: 'streamableHttp', url: 'http://127.0.0.1:9001/mcp' },
        inferred: { url: 'http://127.0.0.1:9002/mcp' },
      },
    });
    expect(upstreams.map((u) => [u.name, u.type])).toEqual([
      ['github', 'http'],
      ['docs', 'http'],
      ['wiki', 'http'],
      ['inferred', 'http'],
    ]);
    expect(upstreams[0]).toMatchObject({
      url: 'https://api.example/mcp',
      headers: { Authorization: 'Bearer abc', 'X-Trace': '1' },
      scope: 'upstream:github',
      prefix: 'github_',
    });
    expect(upstreams[0]?.command).toBeUndefined();
  });

  it('merges servers and mcpServers of one file, and refuses a name given twice', () => {
    const both = load({
      servers: { web: { type: 'http', url: 'http://127.0.0.1:9000/mcp' } },
      mcpServers: { memory: { command: 'node' } },
    });
    expect(both.upstreams.map((u) => `${u.name}:${u.type}`).sort()).toEqual(['memory:stdio', 'web:http']);

    expect(
      problemOf({
        servers: { memory: { command: 'node' } },
        mcpServers: { memory: { command: 'node' } },
      }),
    ).toMatch(/upstreams file mcp\.json: memory: defined twice/);
  });

  it('takes names that objects inherit as ordinary names, and never a prototype', () => {
    const { upstreams } = load({
      mcpServers: { constructor: { command: 'node' }, toString: { command: 'node' } },
    });
    expect(upstreams.map((u) => u.name)).toEqual(['constructor', 'toString']);

    expect(
      problemOf('{ "mcpServers": { "__proto__": { "command": "node" }, "memory": { "command": "node" } } }'),
    ).toMatch(/__proto__: not an upstream name/);
    expect(({} as Record<string, unknown>).command).toBeUndefined();
  });

  it('reads disabled as the opposite of enabled, and ignores other clients approval lists', () => {
    const { upstreams } = load({
      mcpServers: {
        off: { command: 'node', disabled: true, autoApprove: ['read_graph'] },
        on: { command: 'node', disabled: false, alwaysAllow: ['echo'] },
        plain: { command: 'node', enabled: false },
      },
    });
    expect(upstreams.map((u) => [u.name, u.enabled])).toEqual([
      ['off', false],
      ['on', true],
      ['plain', false],
    ]);
    for (const upstream of upstreams) {
      expect(upstream).not.toHaveProperty('autoApprove');
      expect(upstream).not.toHaveProperty('alwaysAllow');
      expect(upstream).not.toHaveProperty('disabled');
    }
  });

  it('refuses an unknown key, naming it', () => {
    const message = problemOf({ mcpServers: { memory: { command: 'node', restartPolicy: 'always' } } });
    expect(message).toContain('upstreams.memory.restartPolicy: unknown key');
  });

  it('refuses an unknown top-level key of the file', () => {
    expect(problemOf({ servers: {}, mcp: {} })).toContain('upstreams file mcp.json: mcp: unknown key');
  });

  it('refuses the SSE transport, pointing to Streamable HTTP', () => {
    const message = problemOf({ servers: { old: { type: 'sse', url: 'http://127.0.0.1:9000/sse' } } });
    expect(message).toContain('upstreams.old.type');
    expect(message).toMatch(/SSE transport is not supported: give the Streamable HTTP endpoint/);
  });

  it('refuses a stdio upstream without a command and an http upstream without a url', () => {
    expect(problemOf({ servers: { a: { type: 'stdio', args: ['x'] } } })).toContain(
      'upstreams.a.command: required for a stdio upstream',
    );
    expect(problemOf({ servers: { b: { type: 'http' } } })).toContain(
      'upstreams.b.url: required for an http upstream',
    );
  });

  it('refuses headers, or a url, on a stdio upstream', () => {
    expect(problemOf({ servers: { a: { command: 'node', headers: { 'X-Key': 'v' } } } })).toContain(
      'upstreams.a.headers: only for an http upstream',
    );
    expect(
      problemOf({ servers: { a: { type: 'stdio', command: 'node', url: 'http://127.0.0.1/mcp' } } }),
    ).toContain('upstreams.a.url: only for an http upstream');
  });

  it.each([['has space'], ['-leading-dash'], ['a'.repeat(33)], ['dots.in.name']])(
    'refuses the upstream name %j',
    (name) => {
      const message = problemOf({ mcpServers: { [name]: { command: 'node' } } });
      expect(message).toMatch(/expected up to 32 letters, digits, _ or - \(the upstream name\)/);
    },
  );

  it('reads the file BASTION_UPSTREAMS names, and reports a named file that is missing', () => {
    const dir = tmp();
    writeFileSync(
      path.join(dir, 'elsewhere.json'),
      JSON.stringify({ mcpServers: { memory: { command: 'node' } } }),
    );
    const config = loadConfig({ cwd: dir, env: { BASTION_UPSTREAMS: 'elsewhere.json' } });
    expect(config.upstreams.map((u) => u.name)).toEqual(['memory']);

    expect(() => loadConfig({ cwd: dir, env: { BASTION_UPSTREAMS: 'missing.json' } })).toThrow(
      /upstreams file missing\.json: cannot be read/,
    );
  });

  it('prefers the file BASTION_UPSTREAMS names over config/mcp.json', () => {
    const dir = withMcpJson({ mcpServers: { fromDefault: { command: 'node' } } });
    const named = path.join(dir, 'named.json');
    writeFileSync(named, JSON.stringify({ servers: { fromNamed: { command: 'node' } } }));
    const config = loadConfig({ cwd: dir, env: { BASTION_UPSTREAMS: named } });
    expect(config.upstreams.map((u) => u.name)).toEqual(['fromNamed']);
  });

  it('has no upstreams without a file', () => {
    expect(loadConfig({ cwd: tmp(), env: {} }).upstreams).toEqual([]);
  });

  it('reads upstreams from the main config file, but not from it and mcp.json at once', () => {
    const dir = tmp();
    const file = path.join(dir, 'bastion.json');
    writeFileSync(file, JSON.stringify({ upstreams: { memory: { command: 'node' } } }));
    expect(loadConfig({ cwd: dir, file, env: {} }).upstreams.map((u) => u.name)).toEqual(['memory']);

    mkdirSync(path.join(dir, 'config'));
    writeFileSync(
      path.join(dir, 'config', 'mcp.json'),
      JSON.stringify({ mcpServers: { other: { command: 'node' } } }),
    );
    expect(() => loadConfig({ cwd: dir, file, env: {} })).toThrow(
      /upstreams: set in mcp\.json and in the config file; keep one/,
    );
  });

  it('reports a file that is not valid JSON or holds no object', () => {
    expect(problemOf('{ "mcpServers": ')).toContain('upstreams file mcp.json: not valid JSON');
    expect(problemOf('[]')).toContain('upstreams file mcp.json: must hold an object');
    expect(problemOf({ servers: [] })).toContain(
      'upstreams file mcp.json: servers: must map names to servers',
    );
  });

  it('accepts a Bastion scope instead of the upstream scope, and refuses a made-up one', () => {
    const { upstreams } = load({
      mcpServers: { reader: { command: 'node', scope: 'files:read' }, own: { command: 'node' } },
    });
    expect(upstreams.map((u) => u.scope)).toEqual(['files:read', 'upstream:own']);
    expect(upstreamScopes(upstreams)).toEqual(['upstream:own']);

    expect(problemOf({ mcpServers: { a: { command: 'node', scope: 'root' } } })).toContain(
      'upstreams.a.scope: expected files:read, files:write, agent, admin or upstream:<name>',
    );
    expect(problemOf({ mcpServers: { a: { command: 'node', scope: 'upstream:' } } })).toContain(
      'upstreams.a.scope',
    );
  });
});

describe('variables in upstreams', () => {
  it('expands ${env:X}, ${X} and ${X:-default} in command, args, env, cwd, url and headers', () => {
    const env = { TOKEN: 'tok-123', HOST: '127.0.0.1', DATA: '/srv/data', EMPTY: '' };
    const { upstreams } = load(
      {
        servers: {
          local: {
            command: '${env:DATA}/bin/server',
            args: ['--dir', '${DATA}', '--mode=${MODE:-fast}', '${EMPTY:-fallback}'],
            env: { API_TOKEN: '${env:TOKEN}', LEVEL: '${LEVEL:-info}' },
            cwd: '${DATA}',
          },
          remote: {
            url: 'http://${HOST}:${PORT:-9000}/mcp',
            headers: { Authorization: 'Bearer ${env:TOKEN}' },
          },
        },
      },
      env,
    );
    expect(upstreams[0]).toMatchObject({
      command: '/srv/data/bin/server',
      args: ['--dir', '/srv/data', '--mode=fast', 'fallback'],
      env: { API_TOKEN: 'tok-123', LEVEL: 'info' },
      cwd: '/srv/data',
    });
    expect(upstreams[1]).toMatchObject({
      url: 'http://127.0.0.1:9000/mcp',
      headers: { Authorization: 'Bearer tok-123' },
    });
  });

  it('leaves strings outside the expanded fields alone', () => {
    const { upstreams } = load(
      { mcpServers: { memory: { command: 'node', tools: { allow: ['${X}'] } } } },
      { X: 'expanded' },
    );
    expect(upstreams[0]?.tools.allow).toEqual(['${X}']);
  });

  it('names an unset variable and never a value from the environment', () => {
    const secret = 'sk-live-3f9a7c1e-do-not-print';
    const message = problemOf(
      {
        servers: {
          remote: {
            url: 'https://api.example/mcp',
            headers: { Authorization: 'Bearer ${env:API_TOKEN}', 'X-Org': '${ORG_ID}' },
          },
          local: { command: 'node', args: ['${API_TOKEN}'], env: { KEY: '${env:MISSING_KEY}' } },
        },
      },
      { API_TOKEN: secret },
    );
    expect(message).toContain(
      "upstreams.remote.headers: ${ORG_ID}: ORG_ID is not set in Bastion's environment",
    );
    expect(message).toContain(
      "upstreams.local.env: ${env:MISSING_KEY}: MISSING_KEY is not set in Bastion's environment",
    );
    expect(message).not.toContain(secret);
    expect(message).not.toContain('API_TOKEN');
  });

  it('never shows a value from the environment when the expanded string is refused', () => {
    const secret = 'hunter2-secret-host';
    const message = problemOf(
      { servers: { remote: { url: '${BASE}', headers: { 'X-Key': '${KEY}' } } } },
      { BASE: `not a url ${secret}`, KEY: secret },
    );
    expect(message).toContain('upstreams.remote.url');
    expect(message).not.toContain(secret);
  });

  it('refuses VS Code prompted inputs', () => {
    const message = problemOf({
      inputs: [{ type: 'promptString', id: 'token', password: true }],
      servers: { remote: { url: 'https://api.example/mcp', headers: { Authorization: '${input:token}' } } },
    });
    expect(message).toContain(
      'upstreams.remote.headers: ${input:token}: prompted inputs are a VS Code feature; use ${env:NAME}',
    );
  });
});

describe('upstream scopes', () => {
  it('are scopes when the name is an upstream name', () => {
    expect(isScope('upstream:memory')).toBe(true);
    expect(isScope('upstream:My_Server-2')).toBe(true);
    expect(isScope('files:read')).toBe(true);
    for (const bad of [
      'upstream:',
      'upstream:a b',
      'upstream:-x',
      `upstream:${'a'.repeat(33)}`,
      'upstream',
      'root',
    ])
      expect(isScope(bad)).toBe(false);
  });

  it('are held by the local principal for the configured upstreams', () => {
    const principal = localPrincipal(true, false, ['upstream:memory', 'upstream:web']);
    expect([...principal.scopes].sort()).toEqual(['agent', 'files:read', 'upstream:memory', 'upstream:web']);
    expect(localPrincipal(false).scopes.has('upstream:memory')).toBe(false);
  });

  it('may be given to an API key, and a malformed one may not', () => {
    const record = (scopes: string[]) => ({
      id: '0123456789ab',
      client: 'ci',
      scopes,
      tier: 'default',
      hash: 'a'.repeat(64),
      created: new Date(0).toISOString(),
    });
    expect(keyRecord.safeParse(record(['files:read', 'upstream:memory'])).success).toBe(true);
    expect(keyRecord.safeParse(record(['upstream:'])).success).toBe(false);
    expect(keyRecord.safeParse(record(['upstream:a b'])).success).toBe(false);
  });
});
