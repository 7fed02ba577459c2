import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ENV_KEYS } from '../../src/config/config.env.js';
import { parse as parseYaml } from 'yaml';

// hadolint is not in Debian bookworm and its npm wrapper downloads a binary, so the rules that matter for
// this image are checked here, on the Dockerfile as Docker reads it (continuations joined, comments dropped).

interface Instruction {
  keyword: string;
  args: string;
  /** Index of the stage (FROM) the instruction belongs to. */
  stage: number;
}

interface Stage {
  index: number;
  image: string;
  name?: string;
  workdir: string;
  instructions: Instruction[];
}

const ROOT = path.resolve('.');
const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const instructions = parseDockerfile(text);
const stages = toStages(instructions);
const final = stages.at(-1) as Stage;
const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

function parseDockerfile(source: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of source.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (current !== '' && line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  if (current) logical.push(current);
  let stage = -1;
  return logical.map((line) => {
    const match = /^(\S+)\s*(.*)$/.exec(line) as RegExpExecArray;
    const keyword = (match[1] as string).toUpperCase();
    if (keyword === 'FROM') stage += 1;
    return { keyword, args: (match[2] as string).trim(), stage };
  });
}

function toStages(all: Instruction[]): Stage[] {
  const result: Stage[] = [];
  for (const instruction of all) {
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.split(/\s+/);
      result.push({
        index: instruction.stage,
        image: image as string,
        ...(as?.toUpperCase() === 'AS' && name ? { name } : {}),
        workdir: '/',
        instructions: [],
      });
      continue;
    }
    const stage = result[instruction.stage] as Stage;
    stage.instructions.push(instruction);
    if (instruction.keyword === 'WORKDIR') {
      stage.workdir = path.posix.resolve(stage.workdir, instruction.args);
    }
  }
  return result;
}

function of(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

/** Exec form (a JSON array) of ENTRYPOINT, CMD or a HEALTHCHECK's CMD. */
function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  expect(Array.isArray(parsed)).toBe(true);
  return parsed as string[];
}

/** KEY=value pairs of ENV, LABEL or ARG, values unquoted. */
function pairs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const match of args.matchAll(/([A-Za-z_][\w.-]*)(?:=("(?:[^"\\]|\\.)*"|\S*))?/g)) {
    const value = match[2] ?? '';
    out[match[1] as string] = value.startsWith('"') ? (JSON.parse(value) as string) : value;
  }
  return out;
}

/** The COPY/ADD flags and operands: sources then destination. */
function copyArgs(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const operands = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { ...(from ? { from } : {}), sources: operands.slice(0, -1), dest: operands.at(-1) as string };
}

/** Docker's .dockerignore semantics: patterns in order, the last one that matches decides. */
function dockerIgnored(patterns: string[], file: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = path.posix.normalize((negated ? raw.slice(1) : raw).replace(/^\/+/, ''));
    const regex = new RegExp(
      `^${pattern
        .split('**')
        .map((part) =>
          part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('.*')}(/.*)?$`,
    );
    if (regex.test(file)) ignored = !negated;
  }
  return ignored;
}

const dockerignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

describe('Dockerfile base images', () => {
  it('pins every FROM to an exact version: no latest, no floating major or minor', () => {
    const names = new Set<string>();
    for (const stage of stages) {
      if (names.has(stage.image)) continue; // FROM <earlier stage>
      expect(stage.image).not.toMatch(/:latest$/);
      expect(stage.image).toMatch(/^[\w./-]+(:\d+\.\d+\.\d+(-[\w.-]+)?|@sha256:[0-9a-f]{64})$/);
      if (stage.name) names.add(stage.name);
    }
  });

  it('builds on the same Node version and Debian release it runs on (better-sqlite3 is a native addon)', () => {
    const tags = stages.map((s) => /:(\d+\.\d+\.\d+)-(\w+)/.exec(s.image)?.slice(1));
    for (const tag of tags) expect(tag).toEqual(tags.at(-1));
    expect(final.image).toMatch(/-slim$/);
  });
});

describe('Dockerfile stages', () => {
  it('is multi-stage: the build stage compiles with every dependency, the final stage runs npm nothing', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.find((s) => of(s, 'RUN').some((r) => /\bnpm run build\b/.test(r.args)));
    expect(build).toBeDefined();
    expect(of(build as Stage, 'RUN').some((r) => /\bnpm ci\b(?!.*--omit=dev)/.test(r.args))).toBe(true);
    expect(build).not.toBe(final);
    expect(of(final, 'RUN').some((r) => /\bnpm (ci|install|i)\b/.test(r.args))).toBe(false);
  });

  it('copies production-only node_modules and the compiled dist into the final stage', () => {
    const copies = of(final, 'COPY').map((c) => copyArgs(c.args));
    const modules = copies.find((c) => c.sources.some((s) => s.endsWith('node_modules')));
    const dist = copies.find((c) => c.sources.some((s) => s.endsWith('dist')));
    expect(modules?.from).toBeDefined();
    expect(dist?.from).toBeDefined();
    const producer = stages.find((s) => s.name === modules?.from) as Stage;
    const runs = of(producer, 'RUN').map((r) => r.args);
    // The stage that made them installed without dev dependencies, or pruned them afterwards.
    expect(runs.some((r) => /npm (ci|prune)\b[^&;]*--omit=dev/.test(r))).toBe(true);
    expect(runs.filter((r) => /\bnpm ci\b/.test(r)).every((r) => /--omit=dev/.test(r))).toBe(
      !runs.some((r) => /npm prune\b[^&;]*--omit=dev/.test(r)),
    );
    const builder = stages.find((s) => s.name === dist?.from) as Stage;
    expect(of(builder, 'RUN').some((r) => /\bnpm run build\b/.test(r.args))).toBe(true);
  });

  it('takes every COPY source from the repository or from an earlier stage, and none from outside', () => {
    for (const stage of stages) {
      for (const copy of of(stage, 'COPY').map((c) => copyArgs(c.args))) {
        for (const source of copy.sources) {
          if (copy.from) {
            const producer = stages.find((s) => s.name === copy.from);
            expect(producer).toBeDefined();
            expect((producer as Stage).index).toBeLessThan(stage.index);
            expect(source.startsWith(`${(producer as Stage).workdir}/`)).toBe(true);
          } else {
            expect(path.isAbsolute(source) || source.includes('..')).toBe(false);
            expect(existsSync(path.join(ROOT, source))).toBe(true);
            // And the build context still holds it.
            expect(dockerIgnored(dockerignore, path.posix.normalize(source))).toBe(false);
          }
        }
      }
    }
  });

  it('never ADDs a URL (use a pinned package or a checksum-verified download in a RUN)', () => {
    for (const add of instructions.filter((i) => i.keyword === 'ADD')) {
      expect(add.args).not.toMatch(/https?:\/\/|git@/);
    }
  });

  it('installs Debian packages without recommends, pinned, and removes the package lists in the same layer', () => {
    const installs = instructions.filter((i) => i.keyword === 'RUN' && /apt-get install/.test(i.args));
    expect(installs.length).toBeGreaterThan(0);
    for (const run of installs) {
      expect(run.args).toMatch(/apt-get update/);
      expect(run.args).toMatch(/apt-get install[^&;]*--no-install-recommends/);
      expect(run.args).toMatch(/rm -rf \/var\/lib\/apt\/lists\/\*/);
      const packages = (/apt-get install\s+(.*?)(&&|;|$)/.exec(run.args)?.[1] ?? '')
        .split(/\s+/)
        .filter((w) => w && !w.startsWith('-'));
      for (const pkg of packages) expect(pkg).toMatch(/^[\w.+-]+=[\w.+:~-]+$/);
    }
  });
});

describe('Dockerfile runtime', () => {
  it('runs as a numeric non-root user that owns the two writable volumes', () => {
    const users = of(final, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = (users.at(-1) as Instruction).args;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    const [uid, gid] = user.split(':');
    expect(Number(uid)).toBeGreaterThan(0);
    expect(Number(gid ?? uid)).toBeGreaterThan(0);
    const runs = of(final, 'RUN')
      .map((r) => r.args)
      .join(' && ');
    const chown = new RegExp(`chown ${uid}:${gid ?? uid} ([^&]+)`).exec(runs)?.[1]?.trim().split(/\s+/) ?? [];
    expect(chown).toEqual(expect.arrayContaining(['/data', '/workspace']));
    // A named volume starts as a copy of the image's directory at its mount point, owner included: a
    // directory missing from the image would be root's, and Bastion could not write there.
    const compose = parseYaml(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
      'x-bastion': { volumes: string[] };
    };
    const mounts = compose['x-bastion'].volumes.map((v) => v.split(':')[1] as string);
    expect(chown).toEqual(expect.arrayContaining(mounts));
  });

  it('declares the volumes, port and environment the deployment guides rely on', () => {
    expect(of(final, 'VOLUME').map((v) => execForm(v.args))).toContainEqual(['/data', '/workspace']);
    expect(of(final, 'EXPOSE').map((e) => e.args)).toContain('3000');
    const env = Object.assign({}, ...of(final, 'ENV').map((e) => pairs(e.args))) as Record<string, string>;
    expect(env).toMatchObject({
      NODE_ENV: 'production',
      BASTION_HOST: '0.0.0.0',
      BASTION_PORT: '3000',
      BASTION_DATA_DIR: '/data',
      BASTION_WORKSPACE: '/workspace',
    });
    for (const name of Object.keys(env).filter((n) => n.startsWith('BASTION_'))) {
      expect(ENV_KEYS).toHaveProperty(name);
    }
  });

  it('bakes no secret into the image: no ENV or ARG named like a key, token, password or secret', () => {
    for (const instruction of instructions.filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
      for (const name of Object.keys(pairs(instruction.args))) {
        expect(name).not.toMatch(/KEY|TOKEN|PASSWORD|SECRET|CREDENTIAL/i);
      }
    }
  });

  it('probes liveness with Node (the slim image has no curl) at /health/live', () => {
    const checks = of(final, 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const args = (checks[0] as Instruction).args;
    const command = execForm(args.slice(args.indexOf('CMD') + 3).trim());
    expect(command[0]).toBe('node');
    expect(command.join(' ')).toMatch(/fetch\(.*\/health\/live/);
    expect(command.join(' ')).not.toMatch(/\b(curl|wget)\b/);
  });

  it('starts tini as PID 1, which runs node dist/cli.js, serving by default', () => {
    const entrypoint = execForm((of(final, 'ENTRYPOINT').at(-1) as Instruction).args);
    expect(entrypoint.slice(0, 3)).toEqual(['tini', '--', 'node']);
    expect(entrypoint[3]).toMatch(/^\/app\/dist\/cli\.js$/);
    expect(final.workdir).toBe('/app');
    expect(execForm((of(final, 'CMD').at(-1) as Instruction).args)).toEqual(['serve']);
    // tini comes from Debian in this stage.
    expect(of(final, 'RUN').some((r) => /apt-get install[^&;]*\btini\b/.test(r.args))).toBe(true);
  });

  it('labels the image (OCI) with the package version', () => {
    const args = Object.assign({}, ...of(final, 'ARG').map((a) => pairs(a.args))) as Record<string, string>;
    const labels = Object.assign({}, ...of(final, 'LABEL').map((l) => pairs(l.args))) as Record<
      string,
      string
    >;
    for (const key of ['title', 'description', 'version', 'licenses', 'source']) {
      expect(Object.keys(labels)).toContain(`org.opencontainers.image.${key}`);
    }
    const label = labels['org.opencontainers.image.version'] as string;
    const resolved = label.replace(/\$\{?(\w+)\}?/g, (_m, name: string) => args[name] ?? '');
    expect(resolved).toBe(version);
  });
});

describe('.dockerignore', () => {
  it.each([
    'node_modules',
    'dist',
    'data',
    'workspace',
    '.env',
    '.git',
    'coverage',
    'test/e2e/cli.spec.ts',
    'test/support/cli-server.ts',
    'src/config/config.loader.spec.ts',
    'deploy/compose/bastion.env',
    'deploy/compose/secrets/metrics_token',
    'deploy/compose/tls/privkey.pem',
  ])('keeps %s out of the build context', (file) => {
    expect(dockerIgnored(dockerignore, file)).toBe(true);
  });

  it.each(['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src/cli.ts'])(
    'keeps %s, which the build needs',
    (file) => {
      expect(dockerIgnored(dockerignore, file)).toBe(false);
    },
  );
});
