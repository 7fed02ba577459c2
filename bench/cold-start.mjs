// Cold start, which a desktop client pays on every launch of a stdio server: the time from spawning the
// process to its answer to `initialize`, for `bastion stdio` and for the reference filesystem server
// (@modelcontextprotocol/server-filesystem, a dev dependency), launched alternately on the server's core.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { REPO, pinnedCommand } from './harness.mjs';
import { CLIENT_INFO, LEGACY } from './mcp-requests.mjs';

const require = createRequire(import.meta.url);
const CLI = path.join(REPO, 'dist', 'cli.js');
const REFERENCE = path.join(
  path.dirname(require.resolve('@modelcontextprotocol/server-filesystem/package.json')),
  'dist',
  'index.js',
);

const INITIALIZE = `${JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: CLIENT_INFO },
})}\n`;

/** Milliseconds from spawn to the first stdout line answering id 1 with a result; the child is killed. */
function firstAnswerMs(pin, args, env) {
  const [command, commandArgs] = pinnedCommand(pin, 0, [process.execPath, ...args]);
  const started = performance.now();
  const child = spawn(command, commandArgs, {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.write(INITIALIZE);
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk) => (err = (err + chunk).slice(-4000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no answer to initialize in 30 s:\n${err}`)), 30_000);
    const finish = (error, ms) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      if (error) reject(error);
      else resolve(ms);
    };
    child.stdout.on('data', (chunk) => {
      out += chunk;
      for (const line of out.split('\n').slice(0, -1)) {
        const message = JSON.parse(line);
        if (message.id !== 1) continue;
        if (!message.result) return finish(new Error(`initialize failed: ${line}`));
        return finish(null, performance.now() - started);
      }
    });
    child.on('exit', (code, signal) =>
      finish(new Error(`exited (${signal ?? code}) before answering:\n${err}`)),
    );
  });
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round = (ms) => Math.round(ms);

/**
 * `runs` launches of each, alternating, after one unmeasured launch of each (which fills the page cache);
 * the medians and every run's figure.
 */
export async function stdioColdStart(pin, { workspace, dataDir }, runs) {
  const bastion = () =>
    firstAnswerMs(pin, [CLI, 'stdio', '--workspace', workspace, '--data-dir', dataDir], {
      BASTION_LOG_LEVEL: 'warn',
    });
  const reference = () => firstAnswerMs(pin, [REFERENCE, workspace]);
  await bastion();
  await reference();
  const figures = { bastion: [], reference: [] };
  for (let run = 0; run < runs; run++) {
    figures.bastion.push(round(await bastion()));
    figures.reference.push(round(await reference()));
  }
  return {
    bastionMs: median(figures.bastion),
    referenceMs: median(figures.reference),
    ratio: Math.round((median(figures.bastion) / median(figures.reference)) * 100) / 100,
    runs: figures,
  };
}

export { median };
