import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { stopProcess } from './processes.js';

const CLI = path.resolve('dist/cli.js');

/** A `bastion serve` process started by a test, with what it has printed so far. */
export interface CliServer {
  child: ChildProcess;
  /** The /mcp URL it announced. */
  url: string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null if it had to be killed). */
  stop(graceMs?: number): Promise<number | null>;
}

const STOP_GRACE_MS = 10_000;

/** Spawns `node dist/cli.js serve --port 0 --workspace W --data-dir D` and waits until it serves. */
export async function spawnServer(
  workspace: string,
  dataDir: string,
  env: Record<string, string> = {},
): Promise<CliServer> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--port', '0', '--workspace', workspace, '--data-dir', dataDir],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 15_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /serving MCP at (http:\/\/\S+\/mcp)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
  });
  const stop = async (graceMs = STOP_GRACE_MS): Promise<number | null> => {
    await stopProcess(child, 'SIGTERM', graceMs);
    return exited;
  };
  return { child, url, exited, stdout: () => stdout, stderr: () => stderr, stop };
}
