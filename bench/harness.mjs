// Process plumbing shared by run.mjs, profile.mjs and upstreams.mjs: workspace, server child, load child, RSS.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { BENCH_FILE, benchText } from './mcp-requests.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LOAD = path.join(REPO, 'bench', 'load.mjs');
const CLI = path.join(REPO, 'dist', 'cli.js');

/** Whether the server and the load generator can each get a core of their own. */
export function pinning() {
  if (process.env.BENCH_NO_PIN === '1') return { pinned: false, why: 'BENCH_NO_PIN=1' };
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  if (cores < 2) return { pinned: false, why: `only ${cores} core available` };
  const probe = spawnSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) return { pinned: false, why: 'taskset is missing or not permitted' };
  return { pinned: true, why: 'server on core 0, load generator on core 1' };
}

/** Prefixes a command with taskset when pinning is available. */
export function pinnedCommand(pin, core, args) {
  return pin.pinned ? ['taskset', ['-c', String(core), ...args]] : [args[0], args.slice(1)];
}

export function makeWorkspace() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'bastion-bench-'));
  const workspace = path.join(root, 'workspace');
  const dataDir = path.join(root, 'data');
  const text = benchText(4096);
  mkdirSync(workspace);
  mkdirSync(dataDir);
  writeFileSync(path.join(workspace, BENCH_FILE), text);
  return { root, workspace, dataDir, text, remove: () => rmSync(root, { recursive: true, force: true }) };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a server process (on core 0 when pinned) and resolves once it prints "serving MCP at <url>" on
 * stderr. With taskset the child's PID is the server's own: taskset execs the command.
 */
export async function startProcess({ pin, args, env = {}, label = 'server' }) {
  const [command, commandArgs] = pinnedCommand(pin, 0, args);
  const launched = performance.now();
  const child = spawn(command, commandArgs, {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let startupMs;
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start in 30 s:\n${stderr}`)), 30_000);
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const match = /serving MCP at (\S+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        startupMs = performance.now() - launched;
        resolve(match[1]);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${signal ?? code}) before serving:\n${stderr}`));
    });
  });
  // Keep draining stderr so a chatty server never blocks on a full pipe; keep the tail for diagnostics.
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  return { child, pid: child.pid, url, startupMs, stderr: () => stderr };
}

/**
 * Starts `node dist/cli.js serve` with production defaults (info logging, rate limits on but high enough
 * that the load is never refused); `env` overrides them.
 */
export async function startServer({ pin, workspace, dataDir, nodeArgs = [], env = {} }) {
  const port = await freePort();
  const config = path.join(dataDir, 'bench-config.json');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(
    config,
    JSON.stringify({
      rateLimit: { perIp: 1e9, tiers: { default: { requests: 1e9, maxInFlight: 100_000 } } },
    }),
  );
  const args = [
    process.execPath,
    ...nodeArgs,
    CLI,
    'serve',
    '--port',
    String(port),
    '--workspace',
    workspace,
    '--data-dir',
    dataDir,
  ];
  const server = await startProcess({
    pin,
    args,
    env: { BASTION_CONFIG: config, BASTION_LOG_LEVEL: 'info', ...env },
    label: 'Bastion',
  });
  return { ...server, port };
}

/** Signals the server by PID and waits for it to exit (SIGKILL after `graceMs`). */
export function stopServer(server, signal = 'SIGTERM', graceMs = 5000) {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(child.pid, signal);
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

const loadChildren = new Set();

/** Runs bench/load.mjs (on core 1 when pinned) with one spec and returns its JSON result. */
export function runLoad(pin, spec) {
  const [command, args] = pinnedCommand(pin, 1, [process.execPath, LOAD, JSON.stringify(spec)]);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    loadChildren.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    child.on('error', reject);
    child.on('exit', (code) => {
      loadChildren.delete(child);
      if (code !== 0) return reject(new Error(`load.mjs failed (${code}):\n${err}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`load.mjs printed no result:\n${out}\n${err}`));
      }
    });
  });
}

/** Kills load generators still running (by PID), e.g. on an error or Ctrl-C. */
export function killLoadChildren() {
  for (const child of loadChildren) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Resident set size of a process in KiB, from /proc/<pid>/status (null where /proc is unavailable). */
export function rssKiB(pid) {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** The PIDs of a process's children, from /proc/<pid>/task/<tid>/children (empty without /proc). */
export function childPids(pid) {
  const pids = new Set();
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of list.split(/\s+/).filter(Boolean)) pids.add(Number(child));
    }
  } catch {
    // the process is gone, or there is no /proc
  }
  return [...pids];
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const TICK_MS = (() => {
  const probe = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return 1000 / (Number(probe.stdout) || 100);
})();

/** CPU time (user + system, ms) a process has used, from /proc/<pid>/stat; null without /proc. */
export function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return null;
  }
}

/**
 * CPU time (ms, all cores) of the whole machine, from /proc/stat: `busy` (everything but idle, iowait and
 * steal) and `steal` (time the hypervisor gave to other guests); null without /proc.
 */
export function systemCpuMs() {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal
    const [user, nice, system, , , irq, softirq, steal = 0] = ticks;
    return { busy: (user + nice + system + irq + softirq) * TICK_MS, steal: steal * TICK_MS };
  } catch {
    return null;
  }
}

/**
 * Measures CPU use around `work`: the server's share of a core, how much CPU the rest of the machine (not
 * the server, not the load generator, which reports its own `cpuMs`) used meanwhile, and hypervisor steal.
 * A busy neighbour or a busy host makes the numbers unreliable, so the report says so. `children` ({label:
 * pid}) are processes of the server's own (upstream MCP servers): their share is reported as `childCores`
 * and not counted as other processes'.
 */
export async function withCpuAccounting(serverPid, work, children = {}) {
  const started = performance.now();
  const server0 = processCpuMs(serverPid);
  const children0 = Object.entries(children).map(([label, pid]) => [label, pid, processCpuMs(pid)]);
  const system0 = systemCpuMs();
  const result = await work();
  const wallMs = performance.now() - started;
  const serverMs = server0 === null ? null : processCpuMs(serverPid) - server0;
  const childMs = children0.map(([label, pid, before]) => {
    const after = before === null ? null : processCpuMs(pid);
    return [label, after === null ? null : after - before];
  });
  const childTotalMs = childMs.reduce((sum, [, ms]) => sum + (ms ?? 0), 0);
  const system1 = system0 === null ? null : systemCpuMs();
  const loadMs = result?.cpuMs ?? 0;
  const cores = (ms) => (ms === null ? null : Math.round((ms / wallMs) * 100) / 100);
  return {
    result,
    cpu: {
      serverCores: cores(serverMs),
      loadCores: cores(loadMs),
      ...(childMs.length > 0 && {
        childCores: Object.fromEntries(childMs.map(([label, ms]) => [label, cores(ms)])),
      }),
      otherCores:
        system1 === null || serverMs === null
          ? null
          : cores(Math.max(0, system1.busy - system0.busy - serverMs - loadMs - childTotalMs)),
      stealCores: system1 === null ? null : cores(system1.steal - system0.steal),
    },
  };
}

/**
 * The cores other processes (and hypervisor steal) used over one second before a run, null without /proc;
 * logs a warning above 0.15, since the figures of a busy machine are not reliable.
 */
export async function busyBeforeStart(log) {
  const cpu0 = systemCpuMs();
  await sleep(1000);
  const cpu1 = systemCpuMs();
  const cores =
    cpu0 === null ? null : Math.round((cpu1.busy - cpu0.busy + cpu1.steal - cpu0.steal) / 10) / 100;
  if (cores > 0.15)
    log(`WARNING: the machine is busy before the run (${cores} cores in use by other processes)`);
  return cores;
}

/** A positive number from the environment, or the fallback. */
export function envNumber(name, fallback) {
  const value = Number(process.env[name]);
  return process.env[name] && Number.isFinite(value) && value > 0 ? value : fallback;
}

/**
 * Sends one prepared request ({ headers, body }) as a POST; the status, the content type, the session id
 * a stateful server hands out, and the body as text.
 */
export async function post(url, request) {
  const response = await globalThis.fetch(url, {
    method: 'POST',
    headers: request.headers,
    body: request.body,
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    session: response.headers.get('mcp-session-id'),
    body: await response.text(),
  };
}

/** A number for a report table; n/a when there is none. */
export const fmt = (v, digits = 2) => (v === null || v === undefined ? 'n/a' : Number(v).toFixed(digits));
