// Throughput of one configuration against others: `node bench/variants.mjs '{"name":{"BASTION_X":"v"},...}'`
// (after `npm run build`). Each variant starts its own server (core 0) and takes 2 s of warm-up and 5 s of
// tools/call read_text_file at 64 connections (2025-06-18) from core 1. BENCH_CONNECTIONS and
// BENCH_DURATION override those; BENCH_REVISION=2026-07-28 sends the 2026-07-28 request instead.
import { makeWorkspace, pinning, runLoad, startServer, stopServer } from './harness.mjs';
import { MODERN, benchText, legacyToolCall, modernToolCall } from './mcp-requests.mjs';

const variants = JSON.parse(process.argv[2] ?? '{"default":{}}');
const connections = Number(process.env.BENCH_CONNECTIONS) || 64;
const duration = Number(process.env.BENCH_DURATION) || 5;
const pin = pinning();
for (const [name, env] of Object.entries(variants)) {
  const ws = makeWorkspace();
  const server = await startServer({ pin, workspace: ws.workspace, dataDir: ws.dataDir, env });
  try {
    const result = await runLoad(pin, {
      mode: 'throughput',
      url: server.url,
      connections,
      duration,
      warmup: 2,
      request: process.env.BENCH_REVISION === MODERN ? modernToolCall() : legacyToolCall(),
      expectText: benchText(),
    });
    const { requestsPerSec, latencyMs, errors } = result;
    process.stdout.write(
      `${name}: ${requestsPerSec} calls/s, p50 ${latencyMs.p50} ms, p99 ${latencyMs.p99} ms, errors ${errors ?? 0}\n`,
    );
  } finally {
    await stopServer(server);
  }
}
