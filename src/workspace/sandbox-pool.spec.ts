import { linkSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Principal } from '../auth/principal.js';
import { configSchema } from '../config/config.schema.js';
import { SandboxPool } from './sandbox-pool.js';
import { Sandbox } from './sandbox.js';

let base: string;
let tenant: Principal;

beforeEach(() => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-pool-')));
  mkdirSync(path.join(base, 'shared'));
  mkdirSync(path.join(base, 'tenant'));
  writeFileSync(path.join(base, 'outside.txt'), 'outside\n');
  linkSync(path.join(base, 'outside.txt'), path.join(base, 'tenant', 'linked.txt'));
  tenant = {
    id: 'tenant',
    kind: 'api-key',
    scopes: new Set(['files:read']),
    workspace: path.join(base, 'tenant'),
    tier: 'default',
  };
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

/** The pool as the server builds it: the shared sandbox from the whole config, bound ones from a subset. */
async function pool(allowHardLinks: boolean): Promise<SandboxPool> {
  const { workspace } = configSchema.parse({ workspace: { root: path.join(base, 'shared'), allowHardLinks } });
  const { denyPatterns, limits, readOnly } = workspace;
  return new SandboxPool(await Sandbox.create(workspace), { denyPatterns, limits, readOnly });
}

describe('SandboxPool', () => {
  it('refuses a hard link to an outside file in a bound root, as in the shared one', async () => {
    const sandbox = await (await pool(false)).for(tenant);
    expect(sandbox.allowHardLinks).toBe(false);
    await expect(sandbox.openFile('linked.txt')).rejects.toMatchObject({ code: 'hard_link' });
  });

  it('carries workspace.allowHardLinks from the shared root to every bound root', async () => {
    const sandbox = await (await pool(true)).for(tenant);
    expect(sandbox.allowHardLinks).toBe(true);
    const file = await sandbox.openFile('linked.txt');
    file.handle.close();
    expect(file.stats.nlink).toBe(2);
  });
});
