import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { freePort, stopProcess } from './processes.js';

export interface RedisServer {
  url: string;
  port: number;
  /** Stops this server's process (by its PID) and resolves once it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port after stop(); it reloads its data only when started with `dir`. */
  start(): Promise<void>;
}

/** Redis's own clock in ms: the "now" its Lua scripts read and its key expiries run on. */
export async function redisNow(redis: Pick<Redis, 'time'>): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * Waits until Redis's clock reads `ms` past `since` (a redisNow reading): for behaviour timed by Redis
 * (script windows, key expiry), which no fake clock reaches. Keep `ms` to a few tens of milliseconds.
 */
export async function untilRedisClock(redis: Pick<Redis, 'time'>, since: number, ms: number): Promise<void> {
  while ((await redisNow(redis)) < since + ms) await sleep(5);
}

export interface RedisOptions {
  /** Persist every write (append-only file, fsync always) in this directory, so data survives a restart. */
  dir?: string;
  /** A config file, read first (a sentinel needs one it can write). */
  configFile?: string;
  /** More command-line options, after the defaults (TLS ports, cluster mode, `--sentinel`). */
  args?: string[];
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 5;
const OUTPUT_LIMIT = 8_192;

interface RedisChild {
  process: ChildProcess;
  exited: Promise<void>;
  output(): string;
}

type Readiness = 'ready' | 'port-taken';

/**
 * Starts a throwaway `redis-server` (no persistence unless `dir` is given) on a free loopback port and waits
 * until it answers PING. Throws, rather than letting tests skip, when the binary is missing.
 */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const binary = findOnPath('redis-server');
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    const child = launch(binary, port, options);
    const readiness = await waitUntilReady(child, port).catch(async (error: unknown) => {
      await stopChild(child);
      throw error;
    });
    if (readiness === 'ready') return restartable(binary, port, child, options);
    await stopChild(child);
  }
  throw new Error(
    `redis-server: no free port after ${PORT_ATTEMPTS} attempts (another process kept taking it)`,
  );
}

/** The handle of a running server; start() relaunches it on the same port once it has been stopped. */
function restartable(binary: string, port: number, first: RedisChild, options: RedisOptions): RedisServer {
  let current = first;
  return {
    url: `redis://${HOST}:${port}`,
    port,
    stop: () => stopChild(current),
    async start() {
      if (!hasExited(current.process)) throw new Error(`redis-server on port ${port} is still running`);
      const child = launch(binary, port, options);
      current = child;
      const readiness = await waitUntilReady(child, port).catch(async (error: unknown) => {
        await stopChild(child);
        throw error;
      });
      if (readiness === 'port-taken') {
        await stopChild(child);
        throw new Error(`redis-server: another process took port ${port} while it was stopped`);
      }
    },
  };
}

function findOnPath(command: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  throw new Error(
    `${command} is not on PATH; the Redis integration tests need a real server: apt-get install -y redis-server`,
  );
}

function launch(
  binary: string,
  port: number,
  { dir, configFile, args: extra = [] }: RedisOptions = {},
): RedisChild {
  const persistence = dir
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]
    : ['--appendonly', 'no'];
  const args = [
    ...(configFile ? [configFile] : []),
    ...['--save', '', ...persistence, '--bind', HOST, '--port', String(port)],
    ...extra,
  ];
  const child = spawn(binary, args, { cwd: dir ?? tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      collect(Buffer.from(`spawn failed: ${error.message}\n`));
      resolve();
    });
  });
  return { process: child, exited, output: () => output };
}

async function waitUntilReady(child: RedisChild, port: number): Promise<Readiness> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (hasExited(child.process)) return exitedBeforeReady(child);
    const pid = await probe(port);
    if (pid !== undefined) return pid === child.process.pid ? 'ready' : 'port-taken';
    if (Date.now() > deadline) {
      throw new Error(
        `redis-server on ${HOST}:${port} did not answer PING within ${READY_TIMEOUT_MS} ms; its output:\n${child.output()}`,
      );
    }
    await sleep(25);
  }
}

async function exitedBeforeReady(child: RedisChild): Promise<Readiness> {
  await child.exited;
  if (/address already in use/i.test(child.output())) return 'port-taken';
  const { exitCode, signalCode } = child.process;
  throw new Error(
    `redis-server exited (code ${exitCode}, signal ${signalCode}) before answering PING; its output:\n${child.output()}`,
  );
}

/**
 * PINGs the port and returns the answering server's `process_id`, or undefined if nothing answered yet.
 * The PID tells our child apart from another server that won the race for the port.
 */
function probe(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = createConnection({ host: HOST, port });
    const finish = (pid?: number) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(500, () => finish());
    socket.once('error', () => finish());
    socket.once('close', () => finish());
    socket.once('connect', () => socket.write('PING\r\nINFO server\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.startsWith('-')) return finish();
      const match = /process_id:(\d+)\r\n/.exec(reply);
      if (reply.startsWith('+PONG\r\n') && match) finish(Number(match[1]));
    });
  });
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopChild(child: RedisChild): Promise<void> {
  await stopProcess(child.process, 'SIGTERM', STOP_TIMEOUT_MS);
  await child.exited;
}
