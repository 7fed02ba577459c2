/**
 * A Bastion cluster of real processes on loopback: one redis-server (append-only, so its data survives a
 * restart), N `bastion serve` instances sharing it, one workspace and one keys file, and nginx in front
 * (round robin, no affinity), configured like deploy/nginx/nginx.conf without TLS.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnServer, type CliServer } from './cli-server.js';
import { freePort, stopProcess } from './processes.js';
import { startRedis, type RedisServer } from './redis-server.js';

const NGINX = '/usr/sbin/nginx';
const CLI = path.resolve('dist/cli.js');
const NGINX_READY_MS = 10_000;
const LOG_WAIT_MS = 3_000;

export interface ClusterInstance {
  /** 1-based, as in logs and reports. */
  index: number;
  server: CliServer;
  /** http://127.0.0.1:port, the instance itself (not through nginx). */
  origin: string;
  port: number;
  alive(): boolean;
}

export interface Cluster {
  base: string;
  workspace: string;
  /** A bearer key with every scope, valid on every instance. */
  key: string;
  redis: RedisServer;
  instances: ClusterInstance[];
  /** http://127.0.0.1:port of nginx. */
  origin: string;
  /** The /mcp URL through nginx. */
  mcpUrl: string;
  /** SIGKILL to one instance by its PID; resolves once it has exited. */
  kill(instance: ClusterInstance): Promise<void>;
  /** The instance whose request log holds this request id (waits briefly: the line follows the answer). */
  answeredBy(requestId: string): Promise<ClusterInstance | undefined>;
  /** Stops nginx, the instances and Redis (each by its PID) and removes the temp directory. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  instances?: number;
  /** Extra environment for every instance. */
  env?: Record<string, string>;
}

/** Starts Redis, the instances and nginx; on any failure, stops what it had started and throws. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  accessSync(NGINX, fsConstants.X_OK);
  const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-cluster-')));
  const workspace = path.join(base, 'ws');
  const keysFile = path.join(base, 'keys.json');
  for (const dir of [workspace, path.join(base, 'redis'), path.join(base, 'nginx')]) mkdirSync(dir);
  const instances: ClusterInstance[] = [];
  let redis: RedisServer | undefined;
  let nginx: ChildProcess | undefined;

  const stop = async (): Promise<void> => {
    if (nginx) await stopProcess(nginx, 'SIGTERM');
    await Promise.all(instances.map((instance) => stopProcess(instance.server.child, 'SIGTERM')));
    await redis?.stop();
    rmSync(base, { recursive: true, force: true });
  };

  try {
    redis = await startRedis({ dir: path.join(base, 'redis') });
    const key = createKey(keysFile);
    const env = {
      BASTION_AUTH: 'api-key',
      BASTION_KEYS_FILE: keysFile,
      BASTION_STORE: 'redis',
      BASTION_RATE_LIMIT_STORAGE: 'redis',
      BASTION_REDIS_URL: redis.url,
      BASTION_TRUST_PROXY: '1',
      BASTION_AGENT_PROVIDER: 'rules',
      BASTION_LOG_LEVEL: 'info',
      ...options.env,
    };
    const count = options.instances ?? 3;
    for (let index = 1; index <= count; index++) {
      const server = await spawnServer(workspace, path.join(base, `data-${index}`), {
        ...env,
        BASTION_AUDIT_FILE: path.join(base, `audit-${index}.jsonl`),
      });
      const origin = new URL(server.url).origin;
      instances.push({
        index,
        server,
        origin,
        port: Number(new URL(origin).port),
        alive: () => server.child.exitCode === null && server.child.signalCode === null,
      });
    }
    const port = await freePort();
    const conf = path.join(base, 'nginx', 'nginx.conf');
    writeFileSync(conf, nginxConfig(path.join(base, 'nginx'), port, instances));
    nginx = spawn(NGINX, ['-p', `${path.join(base, 'nginx')}/`, '-c', conf, '-e', 'stderr'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const origin = `http://127.0.0.1:${port}`;
    await waitForNginx(nginx, origin);

    return {
      base,
      workspace,
      key,
      redis,
      instances,
      origin,
      mcpUrl: `${origin}/mcp`,
      async kill(instance) {
        await stopProcess(instance.server.child, 'SIGKILL');
      },
      async answeredBy(requestId) {
        const needle = `"reqId":"${requestId}"`;
        const deadline = Date.now() + LOG_WAIT_MS;
        for (;;) {
          const found = instances.find((instance) => instance.server.stdout().includes(needle));
          if (found || Date.now() > deadline) return found;
          await sleep(50);
        }
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** `bastion keys create` as an operator runs it; the key is the last line printed. */
function createKey(keysFile: string): string {
  const out = execFileSync(
    process.execPath,
    [
      CLI,
      'keys',
      'create',
      '--client',
      'cluster-test',
      '--scopes',
      'files:read,files:write,agent,admin',
      '--keys-file',
      keysFile,
    ],
    { encoding: 'utf8', timeout: 15_000 },
  );
  const key = out.trim().split('\n').pop() ?? '';
  if (!key.startsWith('bst_')) throw new Error('bastion keys create printed no key');
  return key;
}

/**
 * deploy/nginx/nginx.conf's proxying, on plain HTTP: round robin with no affinity, nothing buffered, and
 * nginx's default `proxy_next_upstream error timeout`, which never resends a POST once it reached an
 * instance. nginx's own 502/503/504 become a JSON 503 with Retry-After, as in production.
 */
function nginxConfig(prefix: string, port: number, instances: ClusterInstance[]): string {
  const servers = instances
    .map((instance) => `    server 127.0.0.1:${instance.port} max_fails=3 fail_timeout=10s;`)
    .join('\n');
  return `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 1024; }
http {
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  access_log ${prefix}/access.log;
  map $http_x_request_id $bastion_request_id {
    default $http_x_request_id;
    '' $request_id;
  }
  upstream bastion {
${servers}
    keepalive 64;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 4m;
    proxy_http_version 1.1;
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_cache off;
    proxy_connect_timeout 2s;
    proxy_read_timeout 120s;
    proxy_send_timeout 120s;
    proxy_next_upstream error timeout;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Request-Id $bastion_request_id;
    location / {
      proxy_pass http://bastion;
    }
    error_page 502 503 504 = @unavailable;
    location @unavailable {
      default_type application/json;
      add_header Retry-After 5 always;
      return 503 '{"error":"unavailable","message":"Service unavailable: try again shortly."}';
    }
  }
}
`;
}

async function waitForNginx(nginx: ChildProcess, origin: string): Promise<void> {
  let stderr = '';
  nginx.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_096)));
  const deadline = Date.now() + NGINX_READY_MS;
  for (;;) {
    if (nginx.exitCode !== null || nginx.signalCode !== null) throw new Error(`nginx exited: ${stderr}`);
    const ok = await fetch(`${origin}/health/live`, { signal: AbortSignal.timeout(1_000) })
      .then((response) => response.ok)
      .catch(() => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nginx did not answer within ${NGINX_READY_MS} ms: ${stderr}`);
    await sleep(50);
  }
}
