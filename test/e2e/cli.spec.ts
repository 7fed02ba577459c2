import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';

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

  it('refuses to bind beyond loopback without authentication, and says why', async () => {
    const result = await bastion(['serve', '--host', '0.0.0.0', '--port', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Refusing to listen on 0\.0\.0\.0: no authentication is configured/);
  });

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
});
