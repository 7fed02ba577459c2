import { describe, expect, it } from '@jest/globals';
import {
  DockerfileParser,
  type Copy,
  type From,
  type Healthcheck,
  type Instruction,
  type JSONInstruction,
  type PropertyInstruction,
  type Workdir,
} from 'dockerfile-ast';
import { validate, ValidationSeverity, type ValidatorSettings } from 'dockerfile-utils';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ENV_KEYS } from '../../src/config/config.env.js';

// The Dockerfile is checked by dockerfile-utils (the validator behind VS Code's Docker language service)
// and read through its parser, dockerfile-ast. What follows the validity check is what this image promises.

interface Stage {
  from: From;
  name?: string;
  instructions: Instruction[];
}

const ROOT = path.resolve('.');
const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(text);
const stages = toStages(dockerfile.getInstructions());
const final = stages.at(-1) as Stage;
const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

/**
 * Every check dockerfile-utils makes a warning by default (a second CMD, JSON in single quotes, a relative
 * WORKDIR...) is set to an error: each is a real defect in a shipped image, and none may pass.
 */
const STRICT: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

function diagnostics(source: string): string[] {
  return validate(source, STRICT).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
}

function toStages(all: Instruction[]): Stage[] {
  const result: Stage[] = [];
  for (const instruction of all) {
    if (instruction.getKeyword() === 'FROM') {
      const from = instruction as From;
      result.push({
        from,
        ...(from.getBuildStage() ? { name: from.getBuildStage() as string } : {}),
        instructions: [],
      });
    } else {
      result.at(-1)?.instructions.push(instruction);
    }
  }
  return result;
}

function of<T extends Instruction>(stage: Stage, keyword: string): T[] {
  return stage.instructions.filter((i) => i.getKeyword() === keyword) as T[];
}

function runs(stage: Stage): string[] {
  return of(stage, 'RUN').map((r) => r.getArgumentsContent() ?? '');
}

function stageNamed(name: string | undefined): Stage | undefined {
  return stages.find((s) => s.name === name);
}

function workdir(stage: Stage): string {
  return of<Workdir>(stage, 'WORKDIR').at(-1)?.getAbsolutePath() ?? '/';
}

/** The exec form (JSON array) of CMD, ENTRYPOINT or VOLUME. */
function execForm(instruction: Instruction | undefined): string[] {
  return (instruction as JSONInstruction).getJSONStrings().map((s) => s.getJSONValue());
}

/** KEY=value pairs of ENV, LABEL or ARG in a stage, quotes removed. */
function properties(stage: Stage, keyword: 'ENV' | 'LABEL' | 'ARG'): Record<string, string> {
  return Object.fromEntries(
    of<PropertyInstruction>(stage, keyword)
      .flatMap((i) => i.getProperties())
      .map((p) => [p.getName(), p.getValue() ?? '']),
  );
}

function copies(stage: Stage): Array<{ from?: string; sources: string[] }> {
  return of<Copy>(stage, 'COPY').map((copy) => {
    const operands = copy.getArguments().map((a) => a.getValue());
    const from = copy.getFromFlag()?.getValue() ?? undefined;
    return { ...(from ? { from } : {}), sources: operands.slice(0, -1) };
  });
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

describe('Dockerfile validity', () => {
  it('passes dockerfile-utils with no error and no warning', () => {
    expect(diagnostics(text)).toEqual([]);
  });

  it('would fail on what dockerfile-utils warns about by default (a second CMD)', () => {
    expect(diagnostics('FROM node:24.21.0-bookworm-slim\nCMD ["serve"]\nCMD ["serve"]\n')).toEqual([
      expect.stringMatching(/^line 2: There can only be one CMD instruction/),
    ]);
  });
});

describe('Dockerfile base images', () => {
  it('pins every FROM to an exact version: no latest, no floating major or minor', () => {
    for (const { from } of stages) {
      if (stageNamed(from.getImageName() ?? undefined)) continue; // FROM <earlier stage>
      const pinned = from.getImageDigest() ?? from.getImageTag() ?? '';
      expect({ image: from.getImage(), pinned }).toEqual({
        image: from.getImage(),
        pinned: expect.stringMatching(/^(\d+\.\d+\.\d+(-[\w.-]+)?|sha256:[0-9a-f]{64})$/),
      });
    }
  });

  it('builds on the same Node version and Debian release it runs on (better-sqlite3 is a native addon)', () => {
    const tags = stages.map((s) => /^(\d+\.\d+\.\d+)-(\w+)/.exec(s.from.getImageTag() ?? '')?.slice(1));
    for (const tag of tags) expect(tag).toEqual(tags.at(-1));
    expect(final.from.getImageTag()).toMatch(/-slim$/);
  });
});

describe('Dockerfile stages', () => {
  it('is multi-stage: the build stage compiles with every dependency, the final stage runs npm nothing', () => {
    const build = stages.find((s) => runs(s).some((r) => /\bnpm run build\b/.test(r)));
    expect(build).toBeDefined();
    expect(runs(build as Stage).some((r) => /\bnpm ci\b(?!.*--omit=dev)/.test(r))).toBe(true);
    expect(build).not.toBe(final);
    expect(runs(final).some((r) => /\bnpm (ci|install|i)\b/.test(r))).toBe(false);
  });

  it('copies production-only node_modules and the compiled dist into the final stage', () => {
    const modules = copies(final).find((c) => c.sources.some((s) => s.endsWith('node_modules')));
    const dist = copies(final).find((c) => c.sources.some((s) => s.endsWith('dist')));
    const producer = stageNamed(modules?.from);
    expect(producer).toBeDefined();
    // The stage that made them installed without dev dependencies, or pruned them afterwards.
    const last = runs(producer as Stage)
      .flatMap((r) => r.match(/\bnpm (ci|prune)\b[^&;]*/g) ?? [])
      .at(-1);
    expect(last).toMatch(/--omit=dev/);
    const builder = stageNamed(dist?.from);
    expect(runs(builder as Stage).some((r) => /\bnpm run build\b/.test(r))).toBe(true);
  });

  it('takes every COPY source from the repository or from an earlier stage, and none from outside', () => {
    for (const [index, stage] of stages.entries()) {
      for (const copy of copies(stage)) {
        for (const source of copy.sources) {
          if (copy.from) {
            const producer = stageNamed(copy.from) as Stage;
            expect(stages.indexOf(producer)).toBeGreaterThanOrEqual(0);
            expect(stages.indexOf(producer)).toBeLessThan(index);
            expect(source.startsWith(`${workdir(producer)}/`)).toBe(true);
          } else {
            expect(path.isAbsolute(source) || source.includes('..')).toBe(false);
            expect({ source, exists: existsSync(path.join(ROOT, source)) }).toEqual({ source, exists: true });
            // And the build context still holds it.
            expect({ source, ignored: dockerIgnored(dockerignore, path.posix.normalize(source)) }).toEqual({
              source,
              ignored: false,
            });
          }
        }
      }
    }
  });

  it('copies, never ADDs (no remote or unpacked source reaches the image)', () => {
    expect(dockerfile.getInstructions().filter((i) => i.getKeyword() === 'ADD')).toEqual([]);
  });

  it('installs Debian packages without recommends, pinned, and removes the package lists in the same layer', () => {
    const installs = stages.flatMap(runs).filter((r) => /apt-get install/.test(r));
    expect(installs.length).toBeGreaterThan(0);
    for (const run of installs) {
      expect(run).toMatch(/apt-get update/);
      expect(run).toMatch(/apt-get install[^&;]*--no-install-recommends/);
      expect(run).toMatch(/rm -rf \/var\/lib\/apt\/lists\/\*/);
      const packages = (/apt-get install\s+(.*?)(&&|;|$)/.exec(run)?.[1] ?? '')
        .split(/\s+/)
        .filter((w) => w && !w.startsWith('-'));
      for (const pkg of packages) expect(pkg).toMatch(/^[\w.+-]+=[\w.+:~-]+$/);
    }
  });
});

describe('Dockerfile runtime', () => {
  it('runs as a numeric non-root user that owns the two writable volumes', () => {
    const user = of(final, 'USER').at(-1)?.getArgumentsContent() ?? '';
    expect(user).toMatch(/^\d+(:\d+)?$/);
    const [uid, gid = uid] = user.split(':');
    expect(Number(uid)).toBeGreaterThan(0);
    expect(Number(gid)).toBeGreaterThan(0);
    const chown = new RegExp(`chown ${uid}:${gid} ([^&]+)`).exec(runs(final).join(' && '))?.[1];
    const owned = chown?.trim().split(/\s+/) ?? [];
    expect(owned).toEqual(expect.arrayContaining(['/data', '/workspace']));
    // A named volume starts as a copy of the image's directory at its mount point, owner included: a
    // directory missing from the image would be root's, and Bastion could not write there.
    const compose = parseYaml(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
      'x-bastion': { volumes: string[] };
    };
    const mounts = compose['x-bastion'].volumes.map((v) => v.split(':')[1] as string);
    expect(owned).toEqual(expect.arrayContaining(mounts));
  });

  it('declares the volumes, port and environment the deployment guides rely on', () => {
    expect(of(final, 'VOLUME').map((v) => execForm(v))).toContainEqual(['/data', '/workspace']);
    expect(of(final, 'EXPOSE').map((e) => e.getArgumentsContent())).toContain('3000');
    const env = properties(final, 'ENV');
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
    for (const stage of stages) {
      for (const name of Object.keys({ ...properties(stage, 'ENV'), ...properties(stage, 'ARG') })) {
        expect(name).not.toMatch(/KEY|TOKEN|PASSWORD|SECRET|CREDENTIAL/i);
      }
    }
  });

  it('probes liveness with Node (the slim image has no curl) at /health/live', () => {
    const checks = of<Healthcheck>(final, 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const check = checks[0] as Healthcheck;
    expect(check.getSubcommand()?.getValue()).toBe('CMD');
    const command = JSON.parse((check.getArgumentsContent() ?? '').replace(/^CMD\s+/, '')) as string[];
    expect(command[0]).toBe('node');
    expect(command.join(' ')).toMatch(/fetch\(.*\/health\/live/);
    expect(command.join(' ')).not.toMatch(/\b(curl|wget)\b/);
  });

  it('starts tini as PID 1, which runs node dist/cli.js, serving by default', () => {
    const entrypoint = execForm(of(final, 'ENTRYPOINT').at(-1));
    expect(entrypoint).toEqual(['tini', '--', 'node', '/app/dist/cli.js']);
    expect(workdir(final)).toBe('/app');
    expect(execForm(of(final, 'CMD').at(-1))).toEqual(['serve']);
    // tini comes from Debian in this stage.
    expect(runs(final).some((r) => /apt-get install[^&;]*\btini\b/.test(r))).toBe(true);
  });

  it('labels the image (OCI) with the package version', () => {
    const labels = properties(final, 'LABEL');
    for (const key of ['title', 'description', 'version', 'licenses', 'source']) {
      expect(Object.keys(labels)).toContain(`org.opencontainers.image.${key}`);
    }
    const label = of(final, 'LABEL').at(-1) as Instruction;
    const resolved = labels['org.opencontainers.image.version']?.replace(
      /\$\{?(\w+)\}?/g,
      (_m, name: string) => dockerfile.resolveVariable(name, label.getRange().start.line) ?? '',
    );
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
