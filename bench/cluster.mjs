// Scale-out bench: 1, 2 and 3 Bastion instances sharing Redis (conversation store and rate-limit counters)
// behind nginx (round robin, no affinity), all on this machine. `node bench/cluster.mjs` (after npm run build).
//
// Measures through nginx: tools/call read_text_file and converse (rules provider, a new conversation per
// call) throughput and latency, RSS of every instance at rest and under load, and the Redis commands one
// conversation turn costs (INFO commandstats around sequential turns). Prints a markdown table.
//
// Environment: BENCH_DURATION (seconds per measured run, default 10), BENCH_WARMUP (default 2),
// BENCH_CONNECTIONS (default 16), BENCH_INSTANCES (default "1,2,3"), BENCH_TURNS (turns for the Redis count,
// default 200).
//
// Nothing is pinned: the instances, nginx, Redis and the load generator share the machine's cores, so on a
// machine with fewer cores than instances more instances measure the cost of coordination, not scaling.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import {
  REPO,
  freePort,
  killLoadChildren,
  makeWorkspace,
  rssKiB,
  runLoad,
  sleep,
  startServer,
  stopServer,
} from './harness.mjs';
import { CONVERSE_ARGS, benchText, checkAnswer, legacyToolCall, retarget } from './mcp-requests.mjs';

const envNumber = (name, fallback) => {
  const value = Number(process.env[name]);
  return process.env[name] && Number.isFinite(value) && value >= 0 ? value : fallback;
};
const DURATION = envNumber('BENCH_DURATION', 10);
const WARMUP = envNumber('BENCH_WARMUP', 2);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 16);
const TURNS = envNumber('BENCH_TURNS', 200);
const INSTANCE_COUNTS = (process.env.BENCH_INSTANCES ?? '1,2,3').split(',').map(Number);
const NGINX = '/usr/sbin/nginx';
const CLI = path.join(REPO, 'dist', 'cli.js');
const NO_PIN = { pinned: false, why: 'instances, nginx, Redis and the load generator share the cores' };

const log = (line) => process.stderr.write(`cluster-bench: ${line}\n`);
const started = [];

/** A child process started here, stopped by its PID on exit or error. */
function track(child) {
  started.push(child);
  return child;
}

function stopAll() {
  killLoadChildren();
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

function redisCli(port, ...args) {
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    encoding: 'utf8',
    timeout: 5_000,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

async function startRedis(dir) {
  const port = await freePort();
  const child = track(
    spawn(
      'redis-server',
      ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port)],
      {
        cwd: dir,
        stdio: 'ignore',
      },
    ),
  );
  for (let i = 0; i < 100; i++) {
    try {
      if (redisCli(port, 'PING').trim() === 'PONG') return { child, port, url: `redis://127.0.0.1:${port}` };
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  throw new Error('redis-server did not answer PING within 5 s');
}

/** Per-command call counts from INFO commandstats. */
function commandCounts(port) {
  const counts = {};
  for (const match of redisCli(port, 'INFO', 'commandstats').matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    counts[match[1]] = Number(match[2]);
  return counts;
}

/** The nginx of test/support/cluster.ts: round robin, unbuffered, default proxy_next_upstream. */
async function startNginx(dir, ports) {
  const port = await freePort();
  const prefix = path.join(dir, `nginx-${ports.length}`);
  mkdirSync(prefix, { recursive: true });
  const servers = ports.map((p) => `    server 127.0.0.1:${p} max_fails=3 fail_timeout=10s;`).join('\n');
  writeFileSync(
    path.join(prefix, 'nginx.conf'),
    `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  access_log off;
  upstream bastion {
${servers}
    keepalive 64;
    keepalive_timeout 60s;
    keepalive_requests 10000;
  }
  server {
    listen 127.0.0.1:${port};
    proxy_http_version 1.1;
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_connect_timeout 2s;
    proxy_read_timeout 120s;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    location / { proxy_pass http://bastion; }
  }
}
`,
  );
  const child = track(
    spawn(NGINX, ['-p', `${prefix}/`, '-c', path.join(prefix, 'nginx.conf'), '-e', 'stderr'], {
      stdio: 'ignore',
    }),
  );
  const origin = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await globalThis
      .fetch(`${origin}/health/live`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { child, origin };
    await sleep(50);
  }
  throw new Error('nginx did not answer within 5 s');
}

function stopChild(child) {
  return stopServer({ child });
}

/** Samples every instance's RSS while `work` runs; returns its result and each instance's peak (KiB). */
async function withRss(pids, work) {
  const peak = pids.map(() => 0);
  const timer = setInterval(() => {
    pids.forEach((pid, i) => (peak[i] = Math.max(peak[i], rssKiB(pid) ?? 0)));
  }, 250);
  try {
    return { result: await work(), peak };
  } finally {
    clearInterval(timer);
  }
}

async function post(url, key, body, expect = 200) {
  const response = await globalThis.fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-06-18',
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== expect) throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`);
  return text;
}

/** Redis commands per turn: sequential turns (nothing else running), counted by INFO commandstats. */
async function redisPerTurn(redisPort, origin, key, { continued }) {
  let conversationId;
  if (continued) {
    const created = await post(`${origin}/v1/conversations`, key, {}, 201);
    conversationId = JSON.parse(created).id;
  }
  redisCli(redisPort, 'CONFIG', 'RESETSTAT');
  for (let i = 0; i < TURNS; i++) {
    const args = { ...CONVERSE_ARGS, ...(conversationId && { conversation_id: conversationId }) };
    const body = await post(`${origin}/mcp`, key, {
      jsonrpc: '2.0',
      id: i,
      method: 'tools/call',
      params: { name: 'converse', arguments: args },
    });
    const reason = checkAnswer(body, benchText(4096).slice(0, 64));
    if (reason) throw new Error(`converse turn ${i}: ${reason}`);
  }
  const counts = commandCounts(redisPort);
  delete counts['config|resetstat'];
  delete counts.config;
  delete counts.info;
  return Object.fromEntries(
    Object.entries(counts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([command, calls]) => [command, Math.round((calls / TURNS) * 100) / 100]),
  );
}

const fmt = (v, digits = 0) => (v === null || v === undefined ? '-' : Number(v).toFixed(digits));
const mib = (kib) => fmt(kib / 1024, 0);

async function main() {
  const loadBefore = os.loadavg()[0];
  const ws = makeWorkspace();
  const redis = await startRedis(ws.root);
  const keysFile = path.join(ws.root, 'keys.json');
  const key = execFileSync(
    process.execPath,
    [
      CLI,
      'keys',
      'create',
      '--client',
      'bench',
      '--scopes',
      'files:read,files:write,agent',
      '--keys-file',
      keysFile,
    ],
    { encoding: 'utf8' },
  )
    .trim()
    .split('\n')
    .pop();
  const auth = { authorization: `Bearer ${key}` };
  const read = legacyToolCall();
  const readRequest = { ...read, headers: { ...read.headers, ...auth } };
  const converse = retarget(read, 'converse', CONVERSE_ARGS);
  const converseRequest = { ...converse, headers: { ...converse.headers, ...auth } };
  const env = {
    BASTION_AUTH: 'api-key',
    BASTION_KEYS_FILE: keysFile,
    BASTION_STORE: 'redis',
    BASTION_RATE_LIMIT_STORAGE: 'redis',
    BASTION_REDIS_URL: redis.url,
    BASTION_TRUST_PROXY: '1',
    BASTION_AGENT_PROVIDER: 'rules',
  };
  const rows = [];
  let perTurn;
  try {
    for (const count of INSTANCE_COUNTS) {
      log(`${count} instance(s): starting`);
      const instances = [];
      for (let i = 1; i <= count; i++)
        instances.push(
          await startServer({
            pin: NO_PIN,
            workspace: ws.workspace,
            dataDir: path.join(ws.root, `data-${count}-${i}`),
            env,
          }),
        );
      instances.forEach((instance) => track(instance.child));
      const nginx = await startNginx(
        ws.root,
        instances.map((instance) => instance.port),
      );
      const pids = instances.map((instance) => instance.pid);
      await sleep(1_000);
      const rest = pids.map((pid) => rssKiB(pid));
      const load = (request, expect) => ({
        mode: 'throughput',
        url: `${nginx.origin}/mcp`,
        connections: CONNECTIONS,
        duration: DURATION,
        warmup: WARMUP,
        request,
        ...expect,
      });
      log(`${count} instance(s): read_text_file x${CONNECTIONS}, ${WARMUP} s + ${DURATION} s`);
      const readRun = await withRss(pids, () => runLoad(NO_PIN, load(readRequest, { expectText: ws.text })));
      log(`${count} instance(s): converse x${CONNECTIONS}, ${WARMUP} s + ${DURATION} s`);
      const converseRun = await withRss(pids, () =>
        runLoad(NO_PIN, load(converseRequest, { expectText: ws.text.slice(0, 64), expectIn: 'answer' })),
      );
      if (count === INSTANCE_COUNTS[INSTANCE_COUNTS.length - 1]) {
        log(`${count} instance(s): Redis commands over ${TURNS} sequential turns`);
        perTurn = {
          instances: count,
          newConversation: await redisPerTurn(redis.port, nginx.origin, key, { continued: false }),
          continued: await redisPerTurn(redis.port, nginx.origin, key, { continued: true }),
        };
      }
      rows.push({
        instances: count,
        read: readRun.result,
        converse: converseRun.result,
        rssRestKiB: rest,
        rssLoadKiB: pids.map((_, i) => Math.max(readRun.peak[i], converseRun.peak[i])),
      });
      await stopChild(nginx.child);
      await Promise.all(instances.map((instance) => stopServer(instance)));
    }
  } finally {
    stopAll();
    ws.remove();
  }

  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const lines = [
    `Cluster bench: ${cores} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, nginx round robin, ` +
      `Redis store and rate-limit counters, ${CONNECTIONS} connections, ${DURATION} s after ${WARMUP} s warm-up; ` +
      `1-minute load average ${loadBefore.toFixed(1)} before the run (anything above ~0.5 is another ` +
      'process competing for the cores).',
    cores < Math.max(...INSTANCE_COUNTS) + 1
      ? `On ${cores} cores the instances, nginx, Redis and the load generator share cores: more instances ` +
        'measure the cost of coordination, not scaling.'
      : '',
    '',
    '| instances | read_text_file req/s | p50 (ms) | p99 (ms) | errors | converse req/s | p50 (ms) | p99 (ms) | errors | RSS at rest (MiB) | RSS under load (MiB) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.instances} | ${fmt(r.read.requestsPerSec)} | ${fmt(r.read.latencyMs.p50, 1)} | ` +
        `${fmt(r.read.latencyMs.p99, 1)} | ${r.read.errors} | ${fmt(r.converse.requestsPerSec)} | ` +
        `${fmt(r.converse.latencyMs.p50, 1)} | ${fmt(r.converse.latencyMs.p99, 1)} | ${r.converse.errors} | ` +
        `${r.rssRestKiB.map(mib).join(' / ')} | ${r.rssLoadKiB.map(mib).join(' / ')} |`,
    ),
  ];
  if (perTurn) {
    const commands = [
      ...new Set([...Object.keys(perTurn.newConversation), ...Object.keys(perTurn.continued)]),
    ];
    lines.push(
      '',
      `Redis commands per converse call (${TURNS} sequential calls through nginx, ${perTurn.instances} instances; ` +
        'rate-limit counters included):',
      '',
      '| command | new conversation | continued conversation |',
      '| --- | --- | --- |',
      ...commands.map((c) => `| ${c} | ${perTurn.newConversation[c] ?? 0} | ${perTurn.continued[c] ?? 0} |`),
      `| total | ${sum(perTurn.newConversation)} | ${sum(perTurn.continued)} |`,
    );
  }
  process.stdout.write(`${lines.filter((line, i) => line !== '' || i > 0).join('\n')}\n`);
  process.stdout.write(`\n${JSON.stringify({ rows, perTurn })}\n`);
}

function sum(counts) {
  return Math.round(Object.values(counts).reduce((a, b) => a + b, 0) * 100) / 100;
}

process.on('SIGINT', () => {
  stopAll();
  process.exit(130);
});

main().catch((error) => {
  stopAll();
  process.stderr.write(`cluster-bench: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
