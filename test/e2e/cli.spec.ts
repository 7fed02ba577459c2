import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { spawnServer } from '../support/cli-server.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/cli.js');
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

async function bastion(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      timeout: 15000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('bastion command line', () => {
  it('prints its version and help', async () => {
    expect((await bastion(['--version'])).stdout.trim()).toBe(pkg.version);
    const help = await bastion(['serve', '--help']);
    for (const flag of ['--host', '--port', '--workspace', '--data-dir', '--config', '--read-only'])
      expect(help.stdout).toContain(flag);
  });

  it('stops at once on a Node.js older than engines.node, in one line naming the version', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'bastion-node-'));
    const pretend = (version: string) => {
      const file = path.join(base, `node-${version}.mjs`);
      writeFileSync(file, `Object.defineProperty(process.versions, 'node', { value: '${version}' });\n`);
      return file;
    };
    try {
      for (const entry of [CLI, path.resolve('scripts/check-node.mjs')]) {
        const old = await run(process.execPath, ['--import', pretend('20.19.0'), entry, 'serve'], {
          timeout: 15000,
        }).then(
          () => ({ code: 0, stderr: '' }),
          (error: { code: number; stderr: string }) => error,
        );
        expect(old.code).toBeGreaterThan(0);
        expect(old.stderr).toBe('bastion: needs Node.js 22.14 or later (22 or 24 LTS); this is 20.19.0.\n');
      }
      const supported = await run(process.execPath, ['--import', pretend('22.14.0'), CLI, '--version']);
      expect(supported.stdout.trim()).toBe(pkg.version);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('refuses to bind beyond loopback without authentication, and says why', async () => {
    const result = await bastion(['serve', '--host', '0.0.0.0', '--port', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Refusing to listen on 0\.0\.0\.0: no authentication is configured/);
  });

  it('refuses a second server on a data directory another one serves from, and takes it once that one stops', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'bastion-lock-'));
    const [workspace, data] = [path.join(base, 'ws'), path.join(base, 'data')];
    const first = await spawnServer(workspace, data);
    try {
      const second = await bastion(['serve', '--port', '0', '--workspace', workspace, '--data-dir', data]);
      expect(second.code).toBe(2);
      expect(second.stderr).toContain(`Another Bastion server is using the data directory ${data}`);
      expect(second.stderr).toContain('--workers N');
    } finally {
      expect(await first.stop()).toBe(0);
    }
    // The lock dies with its holder, however it ends: a SIGKILLed server leaves none behind.
    const killed = await spawnServer(workspace, data);
    killed.child.kill('SIGKILL');
    await killed.exited;
    const next = await spawnServer(workspace, data);
    expect(await next.stop()).toBe(0);
    rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it('stops on bad configuration with one message naming every bad key', async () => {
    const result = await bastion(['serve'], {
      BASTION_PORT: 'not-a-port',
      BASTION_LOG_LEVEL: 'loud',
      BASTION_TYPO: '1',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('server.port');
    expect(result.stderr).toContain('log.level');
    expect(result.stderr).toContain('BASTION_TYPO');
    expect(result.stderr).not.toContain('not-a-port');
  });

  it('creates an API key, printing it once alone on the last line, and lists and revokes it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bastion-keys-'));
    try {
      const keysFile = path.join(dir, 'keys.json');
      const created = await bastion([
        'keys',
        'create',
        '--client',
        'cursor',
        '--scopes',
        'files:read,agent',
        '--keys-file',
        keysFile,
      ]);
      expect(created.code).toBe(0);
      const lines = created.stdout.trimEnd().split('\n');
      const key = lines.at(-1) as string;
      expect(key).toMatch(/^bst_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
      const id = key.split('_')[1] as string;

      const stored = readFileSync(keysFile, 'utf8');
      expect(stored).not.toContain(key.slice(17));
      expect(statSync(keysFile).mode & 0o777).toBe(0o600);

      const listed = await bastion(['keys', 'list', '--keys-file', keysFile]);
      expect(listed.stdout).toContain(`${id}  client=cursor  scopes=files:read,agent`);
      expect(listed.stdout).toContain('active');
      expect(listed.stdout).not.toContain(key);

      expect((await bastion(['keys', 'revoke', id], { BASTION_KEYS_FILE: keysFile })).stdout).toContain(
        `Revoked key ${id}`,
      );
      expect((await bastion(['keys', 'list', '--keys-file', keysFile])).stdout).toMatch(/revoked \d{4}-/);

      const unknown = await bastion(['keys', 'revoke', 'ffffffffffff', '--keys-file', keysFile]);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('No key with id');
      const badScope = await bastion([
        'keys',
        'create',
        '--client',
        'x',
        '--scopes',
        'root',
        '--keys-file',
        keysFile,
      ]);
      expect(badScope.code).toBe(2);
      expect(badScope.stderr).toContain('Unknown scope "root"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
