import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ReadBuffer,
  SdkError,
  SdkErrorCode,
  serializeMessage,
  type JSONRPCMessage,
  type Transport,
} from '@modelcontextprotocol/client';
import { getDefaultEnvironment } from '@modelcontextprotocol/client/stdio';

export interface StdioParams {
  command: string;
  args: string[];
  /** Added to the minimal environment (HOME, PATH, USER...); nothing else of Bastion's is passed on. */
  env: Record<string, string>;
  cwd?: string;
  /** The largest message read from the child; a larger one ends the connection. */
  maxMessageBytes: number;
}

/** Time the child has to end by itself once its stdin is closed, then to end after SIGTERM, before SIGKILL. */
const GRACE_MS = 2_000;
const POLL_MS = 50;
/** Process groups are POSIX: elsewhere the child alone is signalled. */
const GROUPS = process.platform !== 'win32';

/**
 * The SDK's stdio client transport (the same newline-delimited JSON framing, minimal environment and size
 * cap), with the child started in a process group of its own. A server started through a launcher (`npx`,
 * `uvx`, a shell script) runs as the launcher's child, and signalling the launcher's pid alone would leave it
 * running: stopping the child, or killing it when it hangs, signals the whole group.
 */
export class StdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** The child's stderr, there before start() so that no early line is lost. */
  readonly stderr = new PassThrough();
  private child?: ChildProcess;
  private readonly buffer: ReadBuffer;
  private stopping?: Promise<void>;
  private ended = false;

  constructor(private readonly params: StdioParams) {
    this.buffer = new ReadBuffer({ maxBufferSize: params.maxMessageBytes });
  }

  /** The child's pid, which is also its process group's id. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    if (this.child) throw new Error('The stdio transport is already started.');
    const { command, args, env, cwd } = this.params;
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, {
        env: { ...getDefaultEnvironment(), ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
        ...(cwd && { cwd }),
        detached: GROUPS,
        shell: false,
        windowsHide: true,
      });
      this.child = child;
      child.on('error', (error) => {
        reject(error);
        this.onerror?.(error);
      });
      child.on('spawn', () => resolve());
      child.on('close', () => this.end());
      child.stdin.on('error', (error) => this.onerror?.(error));
      child.stdout.on('error', (error) => this.onerror?.(error));
      child.stdout.on('data', (chunk: Buffer) => this.read(chunk));
      child.stderr.pipe(this.stderr);
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || this.stopping || this.ended)
      return Promise.reject(new SdkError(SdkErrorCode.NotConnected, 'Not connected'));
    return new Promise((resolve) => {
      if (stdin.write(serializeMessage(message))) resolve();
      else stdin.once('drain', resolve);
    });
  }

  /** Kills the child's group at once: it stopped answering, and would not act on a request to end. */
  kill(): void {
    if (this.child?.pid !== undefined) signalGroup(this.child.pid, 'SIGKILL');
  }

  /**
   * Closes the child's stdin and gives it time to end; then SIGTERM to the group, then SIGKILL. The group is
   * signalled even when the child ended by itself: what it started (a launcher's server) may outlive it.
   */
  close(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    const child = this.child;
    const pid = child?.pid;
    if (child && pid !== undefined) {
      child.stdin?.end();
      await within(exitOf(child), GRACE_MS);
      if (signalGroup(pid, 'SIGTERM')) {
        signalGroup(pid, 'SIGCONT'); // a stopped process acts on SIGTERM only once continued
        if (!(await groupGone(pid))) signalGroup(pid, 'SIGKILL');
      }
      await within(exitOf(child), GRACE_MS);
      for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.destroy();
    }
    this.buffer.clear();
    this.end();
  }

  private read(chunk: Buffer): void {
    try {
      this.buffer.append(chunk);
    } catch (error) {
      // Over the size cap: the connection ends, as with the SDK's transport.
      this.onerror?.(error as Error);
      void this.close();
      return;
    }
    for (;;) {
      try {
        const message = this.buffer.readMessage();
        if (message === null) return;
        this.onmessage?.(message);
      } catch (error) {
        this.onerror?.(error as Error);
      }
    }
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onclose?.();
  }
}

/** Signals the process group led by `pid`; false when none of it is left. */
function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(GROUPS ? -pid : pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Waits up to GRACE_MS for every process of the group to end. */
async function groupGone(pid: number): Promise<boolean> {
  const deadline = Date.now() + GRACE_MS;
  while (signalGroup(pid, 0)) {
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms).unref()));
  await Promise.race([promise, timeout]);
  clearTimeout(timer);
}
