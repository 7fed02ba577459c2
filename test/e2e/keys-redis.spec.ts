/**
 * Two `bastion serve` processes with no shared disk, sharing API keys through one real redis-server. Keys
 * are created and revoked with the `bastion keys` CLI, as an operator would, and both servers follow.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnServer, type CliServer } from '../support/cli-server.js';
import { postMcp } from '../support/http-server.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/cli.js');
const LIST_TOOLS = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };

let redis: RedisServer;
let base: string;
let env: Record<string, string>;
const servers: CliServer[] = [];

/** `bastion keys ...` with the servers' key store settings, in a directory of its own (no keys file). */
async function keys(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, 'keys', ...args], {
    cwd: base,
    env: { ...process.env, ...env, BASTION_DATA_DIR: path.join(base, 'cli-data') },
    timeout: 15_000,
  });
  return stdout;
}

const status = async (server: CliServer, key: string): Promise<number> =>
  (await postMcp(server.url, LIST_TOOLS, `Bearer ${key}`)).status;

beforeAll(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'bastion-keys-redis-'));
  redis = await startRedis();
  env = {
    BASTION_AUTH: 'api-key',
    BASTION_KEY_STORE: 'redis',
    BASTION_REDIS_URL: redis.url,
    BASTION_AUDIT_ENABLED: 'false',
    BASTION_AGENT_ENABLED: 'false',
  };
  for (const name of ['one', 'two']) {
    const dir = path.join(base, name);
    servers.push(await spawnServer(path.join(dir, 'workspace'), path.join(dir, 'data'), env));
  }
}, 40_000);

afterAll(async () => {
  for (const server of servers) await server.stop();
  await redis?.stop();
  rmSync(base, { recursive: true, force: true });
}, 30_000);

describe('API keys shared through Redis', () => {
  it('a key created on the CLI works on both servers, and a revocation reaches both within 1 s', async () => {
    const created = (await keys('create', '--client', 'fleet', '--scopes', 'files:read')).trim().split('\n');
    const key = created.at(-1) as string;
    const id = /^Created key ([0-9a-f]{12}) /.exec(created[0] as string)?.[1] as string;
    expect(key).toMatch(new RegExp(`^bst_${id}_`));

    for (const server of servers) expect(await status(server, key)).toBe(200);
    expect(await keys('list')).toMatch(new RegExp(`^${id}  client=fleet .* active$`, 'm'));

    await keys('revoke', id);
    const revokedAt = Date.now();
    for (const server of servers) {
      // Poll the way clients would send requests; each answer must turn to 401 before the bound.
      while ((await status(server, key)) !== 401) {
        expect(Date.now() - revokedAt).toBeLessThan(1_000);
        await sleep(20);
      }
    }
    expect(Date.now() - revokedAt).toBeLessThan(1_000);
    expect(await keys('list')).toMatch(new RegExp(`^${id}  client=fleet .* revoked \\S+$`, 'm'));
  });

  it('a key from another deployment is refused by both, and neither server wrote a keys file', async () => {
    const stranger = `bst_0123456789ab_${'A'.repeat(43)}`;
    for (const server of servers) expect(await status(server, stranger)).toBe(401);
    for (const name of ['one', 'two'])
      expect(readdirSync(path.join(base, name, 'data'))).not.toContain('keys.json');
  });
});
