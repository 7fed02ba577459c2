// CPU profile of the server under load: `node bench/profile.mjs [protocol=2025-06-18] [connections=64]
// [tool=read_text_file|converse]` (after `npm run build`). Runs the server with --cpu-prof (core 0), drives the tools/call
// from core 1 for BENCH_DURATION seconds (default 10), stops the server with SIGINT so V8 writes the
// profile, and prints the top self-time functions. BENCH_PROF_DIR sets the directory (/tmp/bastion-prof).
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { formatSummary, resolveProfile, summarize } from './cpuprofile-summary.mjs';
import { makeWorkspace, pinning, runLoad, startServer, stopServer, withCpuAccounting } from './harness.mjs';
import { CONVERSE_ARGS, LEGACY, MODERN, legacyToolCall, modernToolCall, retarget } from './mcp-requests.mjs';

const protocol = process.argv[2] ?? LEGACY;
const connections = Number(process.argv[3] ?? 64);
const duration = Number(process.env.BENCH_DURATION) || 10;
const dir = process.env.BENCH_PROF_DIR ?? '/tmp/bastion-prof';
const tool = process.argv[4] ?? 'read_text_file';
const read = { [LEGACY]: legacyToolCall, [MODERN]: modernToolCall }[protocol]?.();
if (!read) throw new Error(`protocol must be ${LEGACY} or ${MODERN}`);
if (tool !== 'read_text_file' && tool !== 'converse')
  throw new Error('tool must be read_text_file or converse');
const request = tool === 'converse' ? retarget(read, 'converse', CONVERSE_ARGS) : read;

const pin = pinning();
if (!pin.pinned) process.stderr.write(`[profile] WARNING: not pinned (${pin.why})\n`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const ws = makeWorkspace();
const spawned = performance.now();
const server = await startServer({
  pin,
  workspace: ws.workspace,
  dataDir: ws.dataDir,
  nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
});
try {
  const loadStart = performance.now() - spawned;
  process.stderr.write(`[profile] server pid ${server.pid}; ${protocol} x${connections} for ${duration} s\n`);
  const { result, cpu } = await withCpuAccounting(server.pid, () =>
    runLoad(pin, {
      mode: 'throughput',
      url: server.url,
      connections,
      duration,
      warmup: 0,
      request,
      expectText: ws.text,
      ...(tool === 'converse' && { expectIn: 'answer' }),
    }),
  );
  process.stderr.write(
    `[profile] ${result.requestsPerSec} req/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, ` +
      `${result.errors} errors (the profiler itself costs some throughput); CPU cores: server ${cpu.serverCores}, ` +
      `load ${cpu.loadCores}, other processes ${cpu.otherCores}, steal ${cpu.stealCores}\n`,
  );
  await stopServer(server, 'SIGINT', 15_000);
  const file = resolveProfile(dir);
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  // Leave out start-up (module loading, Nest bootstrap): everything before the load began.
  const summary = summarize(profile, 15, Math.round(loadStart));
  process.stdout.write(
    `${file}\n(${tool}, ${protocol}, ${connections} connections, ${duration} s; first ${Math.round(loadStart)} ms of start-up skipped)\n\n` +
      `${formatSummary(summary)}\n`,
  );
} finally {
  await stopServer(server, 'SIGKILL');
  ws.remove();
}
