import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';

// The runtime Bastion supports and the install it asks of npm: one Node major named alike in the image and
// CI, engines.node tested as the oldest runtime, and every dependency install script reviewed.

interface Manifest {
  name: string;
  engines?: { node?: string };
  scripts?: Record<string, string>;
  allowScripts?: Record<string, boolean>;
  scarfSettings?: { enabled?: boolean };
  overrides?: unknown;
}

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as Manifest;
const ci = readFileSync('.ci/run', 'utf8');
const dockerfile = readFileSync('Dockerfile', 'utf8');
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall'];

/**
 * Every package under node_modules (nested ones included) with an install script: declared, or the
 * `node-gyp rebuild` npm gives a package that ships a binding.gyp and declares none.
 */
function packagesWithInstallScripts(dir = 'node_modules', found = new Set<string>()): Set<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.name.startsWith('@')) {
      packagesWithInstallScripts(full, found);
      continue;
    }
    const manifest = path.join(full, 'package.json');
    if (existsSync(manifest)) {
      const dependency = JSON.parse(readFileSync(manifest, 'utf8')) as Manifest;
      const declared = INSTALL_SCRIPTS.some((script) => dependency.scripts?.[script]);
      const implicit = existsSync(path.join(full, 'binding.gyp')) && !dependency.scripts?.preinstall;
      if (declared || implicit) found.add(dependency.name);
    }
    const nested = path.join(full, 'node_modules');
    if (existsSync(nested)) packagesWithInstallScripts(nested, found);
  }
  return found;
}

const versionIn = (text: string, name: string) => new RegExp(`^${name}=(\\S+)$`, 'm').exec(text)?.[1];

describe('runtime and install', () => {
  it('runs CI on the Node version the image runs, and on engines.node as the oldest', () => {
    const image = /^FROM node:(\d+\.\d+\.\d+)-bookworm-slim AS runtime$/m.exec(dockerfile)?.[1];
    expect(image).toBeDefined();
    for (const from of dockerfile.matchAll(/^FROM node:(\S+)-bookworm/gm)) expect(from[1]).toBe(image);
    expect(versionIn(ci, 'NODE_IMAGE')).toBe(image);
    expect(pkg.engines?.node).toBe('>=22.14');
    expect(versionIn(ci, 'NODE_OLDEST')).toBe('22.14.0');
    expect(ci).toMatch(/npm test\n/);
    expect(ci).toMatch(/npm run test:unit\n/);
  });

  it('has reviewed the install script of every dependency that has one, and runs none', () => {
    const reviewed = Object.keys(pkg.allowScripts ?? {}).sort();
    expect([...packagesWithInstallScripts()].sort()).toEqual(reviewed);
    // better-sqlite3 13 ships its N-API addon prebuilt in the package: nothing has to build at install.
    const approved = Object.entries(pkg.allowScripts ?? {}).filter(([, allowed]) => allowed);
    expect(approved).toEqual([]);
    // swagger-ui-dist's install-time analytics: denied, and opted out for npm versions that still run it.
    expect(pkg.allowScripts?.['@scarf/scarf']).toBe(false);
    expect(pkg.scarfSettings).toEqual({ enabled: false });
  });

  it('forces no dependency combination its packages do not declare', () => {
    expect(pkg.overrides).toBeUndefined();
  });

  it('runs no install script in the image', () => {
    const installs = [...dockerfile.matchAll(/npm ci[^\n]*/g)].map((m) => m[0]);
    expect(installs.length).toBeGreaterThan(0);
    for (const install of installs) expect(install).toContain('--ignore-scripts');
    expect(dockerfile).not.toMatch(/npm (rebuild|run-script|exec)/);
  });

  it('stops npm start on an older Node before building', () => {
    expect(pkg.scripts?.prestart).toMatch(/^node scripts\/check-node\.mjs && /);
  });
});
