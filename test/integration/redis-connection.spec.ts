/**
 * The Redis connection against real servers: outage logging, password auth (redis.password), TLS with a
 * throwaway CA (rediss://), a Sentinel-watched primary, and a three-primary Cluster for the rate-limit
 * counters; plus the redis section's combinations refused at boot.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Cluster, Redis } from 'ioredis';
import pino from 'pino';
import { ConfigError } from '../../src/config/config.errors.js';
import { loadConfig } from '../../src/config/config.loader.js';
import { configSchema } from '../../src/config/config.schema.js';
import { RedisThrottlerStorage } from '../../src/rate-limit/redis-throttler.storage.js';
import { connectRedis, connectRedisCluster } from '../../src/store/redis-connection.js';
import { freePort } from '../support/processes.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const silent = pino({ level: 'silent' });
let base: string;
const servers: RedisServer[] = [];
const clients: (Redis | Cluster)[] = [];

beforeAll(() => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-redis-conn-')));
});

afterAll(async () => {
  await Promise.all(clients.map(closeClient));
  await Promise.all(servers.map((server) => server.stop()));
  rmSync(base, { recursive: true, force: true });
});

/** Quits a connected client; one that never connected is dropped where its test ends (see refusedBy). */
async function closeClient(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') await client.quit();
  else client.disconnect();
}

/** Expects the client's connection to fail with `reason`, then stops it retrying. */
async function refusedBy(client: Redis, reason: RegExp): Promise<void> {
  await expect(connected(client)).rejects.toThrow(reason);
  client.disconnect();
  clients.splice(clients.indexOf(client), 1);
}

async function start(options: Parameters<typeof startRedis>[0] = {}): Promise<RedisServer> {
  const server = await startRedis(options);
  servers.push(server);
  return server;
}

/** The redis section as the schema validates it. */
function redisConfig(redis: Record<string, unknown>) {
  return configSchema.parse({ redis }).redis;
}

function connect(redis: Record<string, unknown>, logger = silent): Redis {
  const client = connectRedis(redisConfig(redis), logger);
  clients.push(client);
  return client;
}

/** Resolves once the client has connected, or rejects with why it could not. */
function connected(client: Redis): Promise<void> {
  return new Promise((resolve, reject) => {
    if (client.status === 'ready') return resolve();
    client.once('ready', () => resolve());
    client.once('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('an outage', () => {
  it('logs "redis unreachable" once however long it lasts, and "redis reachable again"', async () => {
    const server = await start();
    const lines: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as { level: number; msg: string });
        done();
      },
    });
    const client = connect({ url: server.url }, pino({ level: 'info' }, sink));
    await connected(client);
    // Several reconnection attempts fail meanwhile: wait for them, not for a guess at how long they take.
    let attempts = 0;
    const failedAttempts = new Promise<void>((resolve) =>
      client.on('reconnecting', () => {
        if (++attempts === 4) resolve(); // the first three attempts have failed
      }),
    );
    await server.stop();
    await failedAttempts;
    const started = performance.now();
    await expect(client.ping()).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(100);
    await server.start();
    await connected(client);
    expect(await client.ping()).toBe('PONG');
    expect(lines.map((line) => line.msg)).toEqual(['redis unreachable', 'redis reachable again']);
  });
});

describe('password auth', () => {
  it('authenticates with redis.password and is refused without it', async () => {
    const server = await start();
    const admin = connect({ url: server.url });
    await connected(admin);
    await admin.config('SET', 'requirepass', 'placeholder-password');

    const withPassword = connect({ url: server.url, password: 'placeholder-password' });
    await connected(withPassword);
    expect(await withPassword.ping()).toBe('PONG');

    const without = connect({ url: server.url });
    await refusedBy(without, /NOAUTH|Authentication required/);
  });

  it('reads the password from BASTION_REDIS_PASSWORD and masks it as a secret', () => {
    const config = loadConfig({
      env: { BASTION_REDIS_URL: 'redis://127.0.0.1:6379', BASTION_REDIS_PASSWORD: 'placeholder' },
      cwd: base,
    });
    expect(config.redis.password).toBe('placeholder');
  });
});

describe('TLS (rediss://)', () => {
  let dir: string;
  let tlsPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(base, 'tls-'));
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=Test CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    );
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=redis.test',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
    );
    // Only a DNS name: connecting to 127.0.0.1 needs redis.tls.servername to match it.
    writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:redis.test\n');
    openssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      'san.ext',
      '-out',
      'server.crt',
    );
    tlsPort = await freePort();
    await start({
      args: [
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        path.join(dir, 'server.crt'),
        '--tls-key-file',
        path.join(dir, 'server.key'),
        '--tls-ca-cert-file',
        path.join(dir, 'ca.crt'),
        '--tls-auth-clients',
        'no',
      ],
    });
  });

  it('connects with the CA file and the certificate name', async () => {
    const client = connect({
      url: `rediss://127.0.0.1:${tlsPort}`,
      tls: { caFile: path.join(dir, 'ca.crt'), servername: 'redis.test' },
    });
    await connected(client);
    expect(await client.ping()).toBe('PONG');
    expect(await client.info('server')).toContain(`tcp_port:`);
  });

  it('refuses a server whose CA it was not given', async () => {
    const client = connect({ url: `rediss://127.0.0.1:${tlsPort}`, tls: { servername: 'redis.test' } });
    await refusedBy(client, /certificate/i);
  });

  it('refuses a certificate that does not name the host', async () => {
    const client = connect({
      url: `rediss://127.0.0.1:${tlsPort}`,
      tls: { caFile: path.join(dir, 'ca.crt') },
    });
    await refusedBy(client, /altnames|does not match|not in the cert/i);
  });

  it('fails at boot when the CA file cannot be read, without naming it', () => {
    const missing = path.join(dir, 'missing-ca.crt');
    expect(() =>
      connectRedis(redisConfig({ url: `rediss://127.0.0.1:${tlsPort}`, tls: { caFile: missing } }), silent),
    ).toThrow('redis.tls.caFile cannot be read.');
  });
});

describe('Sentinel', () => {
  it('finds the primary through the sentinels', async () => {
    const primary = await start();
    const file = path.join(base, 'sentinel.conf');
    writeFileSync(
      file,
      `sentinel monitor bastion-primary 127.0.0.1 ${primary.port} 1\n` +
        'sentinel down-after-milliseconds bastion-primary 1000\n',
    );
    const sentinel = await start({ configFile: file, args: ['--sentinel'] });
    const client = connect({
      sentinels: [`127.0.0.1:${sentinel.port}`],
      sentinelName: 'bastion-primary',
    });
    await connected(client);
    await client.set('bastion:sentinel-probe', 'through the sentinel');
    expect(await client.info('server')).toContain(`tcp_port:${primary.port}\r\n`);

    const direct = connect({ url: primary.url });
    expect(await direct.get('bastion:sentinel-probe')).toBe('through the sentinel');
  });

  it('takes the sentinel list and group name from the environment', () => {
    const config = loadConfig({
      env: { BASTION_REDIS_SENTINELS: '10.0.0.1:26379, 10.0.0.2:26379', BASTION_REDIS_SENTINEL_NAME: 'main' },
      cwd: base,
    });
    expect(config.redis).toMatchObject({
      sentinels: ['10.0.0.1:26379', '10.0.0.2:26379'],
      sentinelName: 'main',
    });
  });
});

describe('Cluster', () => {
  it('keeps rate-limit counters across three primaries', async () => {
    const nodes: RedisServer[] = [];
    for (let i = 0; i < 3; i++) {
      const conf = path.join(base, `cluster-${i}.conf`);
      nodes.push(await start({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', conf] }));
    }
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
    execFileSync('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-yes'], {
      stdio: 'ignore',
      timeout: 20_000,
    });
    const deadline = Date.now() + 15_000;
    while (!clusterOk(nodes)) {
      if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok');
      await sleep(200);
    }

    const cluster = connectRedisCluster(redisConfig({ cluster: addresses }), silent);
    clients.push(cluster);
    const storage = new RedisThrottlerStorage(cluster);
    // Many keys, so their hash tags land in slots owned by every primary.
    const keys = Array.from({ length: 30 }, (_, i) => `client-${i}`);
    for (let hit = 1; hit <= 2; hit++) {
      for (const key of keys) {
        const record = await storage.increment(key, 60_000, 10, 0, 'default');
        expect(record.totalHits).toBe(hit);
      }
    }
    const owners = await Promise.all(
      nodes.map(async (node) =>
        Number(execFileSync('redis-cli', ['-p', String(node.port), 'DBSIZE']).toString()),
      ),
    );
    expect(owners.every((count) => count > 0)).toBe(true);
  });
});

function clusterOk(nodes: RedisServer[]): boolean {
  return nodes.every((node) =>
    execFileSync('redis-cli', ['-p', String(node.port), 'CLUSTER', 'INFO'])
      .toString()
      .includes('cluster_state:ok'),
  );
}

describe('the redis section at boot', () => {
  const refused = (config: Record<string, unknown>): string => {
    const result = configSchema.safeParse(config);
    expect(result.success).toBe(false);
    return JSON.stringify(result.error?.issues.map((issue) => [issue.path.join('.'), issue.message]));
  };

  it.each([
    [{ redis: { url: 'http://127.0.0.1:6379' } }, 'redis.url', 'redis:// or rediss://'],
    [
      { redis: { url: 'redis://a:1', sentinels: ['b:2'], sentinelName: 'm' } },
      'redis.sentinels',
      'set one of',
    ],
    [{ redis: { sentinels: ['b:2'] } }, 'redis.sentinelName', 'required with redis.sentinels'],
    [{ redis: { url: 'redis://a:1', sentinelName: 'm' } }, 'redis.sentinelName', 'only with redis.sentinels'],
    [{ redis: { sentinels: ['no-port'], sentinelName: 'm' } }, 'redis.sentinels.0', 'host:port'],
    [{ redis: { url: 'redis://:pw@a:1', password: 'pw' } }, 'redis.password', 'in one place'],
    [{ redis: { url: 'redis://a:1', tls: { caFile: '/ca.crt' } } }, 'redis.tls', 'rediss://'],
    [{ redis: { url: 'redis://a:1', tls: { rejectUnauthorized: false } } }, 'redis.tls', 'rediss://'],
    [{ rateLimit: { storage: 'redis' } }, 'redis.url', 'when rateLimit.storage is redis'],
    [{ conversations: { store: 'redis' } }, 'redis.url', 'when conversations.store is redis'],
    [
      { conversations: { store: 'redis' }, redis: { cluster: ['a:1', 'b:2', 'c:3'] } },
      'redis.cluster',
      'several hash slots',
    ],
  ])('refuses %j', (config, key, message) => {
    const issues = refused(config);
    expect(issues).toContain(key);
    expect(issues).toContain(message);
  });

  it('accepts a Cluster for the rate-limit counters and a Sentinel-watched primary for conversations', () => {
    expect(
      configSchema.safeParse({ rateLimit: { storage: 'redis' }, redis: { cluster: ['a:1', 'b:2'] } }).success,
    ).toBe(true);
    expect(
      configSchema.safeParse({
        conversations: { store: 'redis' },
        redis: { sentinels: ['[::1]:26379'], sentinelName: 'main', sentinelPassword: 'placeholder' },
      }).success,
    ).toBe(true);
  });

  it('names the bad key and never echoes a password', () => {
    const env = {
      BASTION_REDIS_URL: 'redis://:placeholder-secret@a:1',
      BASTION_REDIS_PASSWORD: 'placeholder-secret',
    };
    let caught: unknown;
    try {
      loadConfig({ env, cwd: base });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).message).toContain('redis.password');
    expect((caught as Error).message).not.toContain('placeholder-secret');
  });
});
