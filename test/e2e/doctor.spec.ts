import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestUpstream } from '../support/upstream-server.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/cli.js');
const MEMORY = path.resolve('node_modules/@modelcontextprotocol/server-memory/dist/index.js');
const HOSTILE = path.resolve('test/support/hostile-upstream.mjs');
/** What must never reach the operator's terminal from an upstream: C0 and C1 controls but the newline, DEL, bidi. */
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** Runs `bastion doctor` in `cwd`, which holds config/mcp.json. */
async function doctor(cwd: string, env: Record<string, string> = {}, args: string[] = []) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'doctor', ...args], {
      cwd,
      env: { ...process.env, ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('bastion doctor', () => {
  let dir: string;
  let upstream: TestUpstream;

  const withUpstreams = (servers: Record<string, unknown>): string => {
    const cwd = mkdtempSync(path.join(dir, 'case-'));
    mkdirSync(path.join(cwd, 'config'));
    writeFileSync(path.join(cwd, 'config', 'mcp.json'), JSON.stringify({ mcpServers: servers }));
    return cwd;
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-doctor-'));
    upstream = await TestUpstream.start();
  });

  afterAll(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects to every upstream, lists the tools Bastion would offer, and exits 0', async () => {
    const cwd = withUpstreams({
      memory: {
        command: process.execPath,
        args: [MEMORY],
        env: { MEMORY_FILE_PATH: path.join(dir, 'm.jsonl') },
      },
      web: {
        url: upstream.url,
        headers: { Authorization: 'Bearer ${env:WEB_TOKEN}' },
        tools: { deny: ['hang'] },
      },
      off: { command: 'nowhere', disabled: true },
    });
    const result = await doctor(cwd, { WEB_TOKEN: 'doctor-web-secret' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('config: ok');
    expect(result.stdout).toMatch(
      /upstream memory: .*server-memory.*\n {2}ok: memory-server [\d.]+, connected in \d+ ms/,
    );
    expect(result.stdout).toMatch(/tools \(9\): memory_create_entities, /);
    expect(result.stdout).toMatch(
      /upstream web: http:\/\/127\.0\.0\.1:\d+\/mcp\n {2}ok: test-upstream 1\.0\.0/,
    );
    expect(result.stdout).toContain('web_echo');
    expect(result.stdout).not.toContain('web_hang');
    expect(result.stdout).toMatch(/upstream off: nowhere\n {2}disabled/);
    expect(result.stdout).toContain('upstreams: all answered');
    // The header was sent, from Bastion's environment, and is printed nowhere.
    expect(upstream.requests.some((r) => r.headers.authorization === 'Bearer doctor-web-secret')).toBe(true);
    expect(result.stdout).not.toContain('doctor-web-secret');
  });

  it('names an upstream that fails and why, masks credentials in its command line, and exits 1', async () => {
    const cwd = withUpstreams({
      db: { command: path.join(dir, 'no-such-server'), args: ['postgresql://admin:db-password@db:5432/app'] },
      web: { url: upstream.url },
    });
    const result = await doctor(cwd);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /upstream db: .*no-such-server postgresql:\/\/\[redacted\]@db:5432\/app\n {2}FAILED: could not be started \(ENOENT\)/,
    );
    expect(result.stdout).not.toContain('db-password');
    expect(result.stdout).toContain('upstreams: 1 of 2 failed');
  });

  it("prints an upstream's names and errors without escapes, controls or secrets", async () => {
    const cwd = withUpstreams({
      hostile: { command: process.execPath, args: [HOSTILE] },
      failing: { command: process.execPath, args: [HOSTILE], env: { HOSTILE_FAIL: 'list' } },
    });
    const result = await doctor(cwd);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /upstream hostile: .*hostile-upstream\.mjs\n {2}ok: evil-server 6\.66, connected in/,
    );
    expect(result.stdout).toContain(
      '  not offered: badname (the name, with its prefix, is not 1-64 letters, digits, _ or -)',
    );
    expect(result.stdout).toContain(
      '  FAILED: answered with an error (-32603): database failed: password=[redacted] at /srv/app/secret.js\n',
    );
    expect(result.stdout).not.toContain('hunter2');
    expect(result.stdout).not.toMatch(CONTROLS);
  });

  it('checks one upstream when asked, and says when there are none', async () => {
    const cwd = withUpstreams({ web: { url: upstream.url }, other: { url: 'http://127.0.0.1:9/mcp' } });
    const one = await doctor(cwd, {}, ['--upstream', 'web']);
    expect(one.code).toBe(0);
    expect(one.stdout).not.toContain('upstream other');
    const none = await doctor(dir);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('upstreams: none configured');
  });

  it('stops on an invalid upstreams file with every problem named', async () => {
    const cwd = withUpstreams({
      old: { type: 'sse', url: 'http://127.0.0.1:9/sse' },
      web: { url: 'http://x/${env:UNSET_VAR}' },
    });
    const result = await doctor(cwd);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('upstreams.old.type: the SSE transport is not supported');
    expect(result.stderr).toContain('UNSET_VAR is not set');
  });
});
