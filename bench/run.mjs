// Load harness: `npm run bench` (builds first). Starts Bastion on core 0, drives it from core 1, prints a
// markdown table and writes bench/results/latest.json.
//
// Environment: BENCH_DURATION (seconds per measured scenario, default 10), BENCH_WARMUP (seconds, default 2),
// BENCH_CONNECTIONS (default "1,16,64"), BENCH_CONVERSE_CONNECTIONS (converse rows, default "1,16"),
// BENCH_CALLERS (connect-cycle callers, default 16), BENCH_CLIENTS (memory scenario clients, default 1000),
// BENCH_MEMORY_ROUNDS (rounds of those clients, default 5: garbage the collector has not yet reclaimed looks
// like growth after one round, a leak keeps growing), BENCH_NO_PIN=1 (skip taskset).
//
// The k6 scenarios of load/ (smoke, average, stress, spike, soak) run without k6 with bench/scenarios.mjs.
import { Buffer } from 'node:buffer';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import * as prettier from 'prettier';
import {
  REPO,
  busyBeforeStart,
  envNumber,
  fmt,
  post,
  killLoadChildren,
  makeWorkspace,
  pinning,
  rssKiB,
  runLoad,
  sleep,
  withCpuAccounting,
  startServer,
  stopServer,
} from './harness.mjs';
import {
  BENCH_FILE,
  CLIENT_INFO,
  CONVERSE_ARGS,
  LEGACY,
  MODERN,
  checkAnswer,
  checkResult,
  legacyInitialize,
  legacyInitialized,
  legacyToolCall,
  modernDiscover,
  modernToolCall,
  retarget,
} from './mcp-requests.mjs';

const DURATION = envNumber('BENCH_DURATION', 10);
const WARMUP = process.env.BENCH_WARMUP === '0' ? 0 : envNumber('BENCH_WARMUP', 2);
const connectionList = (value) => value.split(',').map(Number).filter(Boolean);
const CONNECTIONS = connectionList(process.env.BENCH_CONNECTIONS ?? '1,16,64');
// converse writes a conversation to SQLite on every call: two rows show the single-caller latency and the
// throughput once the writes queue up.
const CONVERSE_CONNECTIONS = connectionList(process.env.BENCH_CONVERSE_CONNECTIONS ?? '1,16');
const CALLERS = envNumber('BENCH_CALLERS', 16);
const CLIENTS = envNumber('BENCH_CLIENTS', 1000);
const CLIENT_CONCURRENCY = 16;
const MEMORY_ROUNDS = envNumber('BENCH_MEMORY_ROUNDS', 5);

const log = (message) => process.stderr.write(`[bench] ${message}\n`);

/**
 * Fails the run unless the request answers 2xx with a successful tool result holding the file text (as
 * the whole text block, or with `check` checkAnswer, in a converse answer).
 */
async function verify(url, label, request, expectText, check = checkResult) {
  const { status, body } = await post(url, request);
  const reason = status >= 200 && status <= 299 ? check(body, expectText) : `HTTP ${status}`;
  if (reason !== null) throw new Error(`${label} verification failed: ${reason}\n${body.slice(0, 500)}`);
  log(`${label}: verified (HTTP ${status}, ${body.length} bytes, the result holds the file text)`);
}

/**
 * Connects the real SDK v2 client pinned to 2026-07-28 and records what it puts on the wire (a custom
 * fetch), so the load replays exactly the SDK's request shape rather than a hand-written imitation.
 */
async function captureModern(url, expectText) {
  const sent = [];
  const recordingFetch = (input, init = {}) => {
    const headers = {};
    new globalThis.Headers(init.headers).forEach((value, key) => (headers[key] = value));
    sent.push({
      method: init.method ?? 'GET',
      headers,
      body: typeof init.body === 'string' ? init.body : undefined,
    });
    return globalThis.fetch(input, init);
  };
  const client = new Client(CLIENT_INFO, { versionNegotiation: { mode: { pin: MODERN } } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: recordingFetch }));
  const result = await client.callTool({ name: 'read_text_file', arguments: { path: BENCH_FILE } });
  await client.close();
  if (result.isError || result.content?.[0]?.text !== expectText) {
    throw new Error('the SDK client did not read the bench file');
  }
  const find = (method) => {
    const request = sent.find((r) => r.method === 'POST' && JSON.parse(r.body ?? '{}').method === method);
    if (!request) throw new Error(`the SDK client sent no ${method} POST`);
    return { method: 'POST', headers: request.headers, body: request.body };
  };
  return { toolCall: find('tools/call'), discover: find('server/discover'), wire: sent };
}

/** Compares a captured request with the documented shape in mcp-requests.mjs, ignoring key order. */
function sameShape(captured, documented) {
  const sorted = (value) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.keys(value)
            .sort()
            .map((k) => [k, sorted(value[k])]),
        )
      : value;
  const norm = (r) => JSON.stringify(sorted({ headers: r.headers, body: JSON.parse(r.body) }));
  return norm(captured) === norm(documented);
}

async function memoryScenario(pin, server, expectText) {
  log(`memory: warm-up ${WARMUP || 2} s at 16 connections`);
  await runLoad(pin, {
    mode: 'throughput',
    url: server.url,
    connections: 16,
    duration: WARMUP || 2,
    warmup: 0,
    request: legacyToolCall(),
    expectText,
  });
  await sleep(1500);
  const before = rssKiB(server.pid);
  let peak = before;
  const poll = setInterval(() => {
    const now = rssKiB(server.pid);
    if (now !== null && now > peak) peak = now;
  }, 50);
  const rounds = [];
  try {
    for (let round = 1; round <= MEMORY_ROUNDS; round++) {
      log(`memory: ${CLIENTS} clients, each on a new TCP connection (initialize + tools/call, then close)`);
      const clients = await runLoad(pin, {
        mode: 'clients',
        url: server.url,
        count: CLIENTS,
        concurrency: CLIENT_CONCURRENCY,
        steps: [
          { ...legacyInitialize(1), expect: 'result' },
          { ...legacyToolCall(2), expect: 'result', expectText },
        ],
      });
      await sleep(1000);
      rounds.push({ ...clients, rssAfterKiB: rssKiB(server.pid) });
    }
  } finally {
    clearInterval(poll);
  }
  const [first] = rounds;
  const after = first.rssAfterKiB;
  const last = rounds.at(-1).rssAfterKiB;
  return {
    protocol: LEGACY,
    rssBeforeKiB: before,
    rssPeakKiB: peak,
    rssAfterKiB: after,
    rssDeltaKiB: before !== null && after !== null ? after - before : null,
    rssLastDeltaKiB: before !== null && last !== null ? last - before : null,
    ...first,
    ...(rounds.length > 1 ? { rssAfterEachRoundKiB: rounds.map((r) => r.rssAfterKiB) } : {}),
  };
}

const mib = (kib) => (kib === null ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`);
const signedMib = (kib) => (kib === null ? 'n/a' : `${kib >= 0 ? '+' : ''}${mib(kib)}`);

function markdown(report) {
  const lines = [];
  lines.push(
    '| scenario | protocol | connections | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | errors | server CPU (cores) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const r of report.throughput) {
    lines.push(
      `| ${r.scenario} | ${r.protocol} | ${r.connections} | ${fmt(r.requestsPerSec, 0)} | ` +
        `${fmt(r.latencyMs.p50)} | ${fmt(r.latencyMs.p95)} | ${fmt(r.latencyMs.p99)} | ${r.errors} | ` +
        `${fmt(r.cpu.serverCores)} |`,
    );
  }
  for (const c of report.cycles) {
    lines.push(
      `| connect cycle: ${c.label} (${fmt(c.cyclesPerSec, 1)} cycles/s; latency per cycle) | ${c.protocol} | ` +
        `${c.callers} | ${fmt(c.requestsPerSec, 0)} | ${fmt(c.cycleLatencyMs.p50)} | ${fmt(c.cycleLatencyMs.p95)} | ` +
        `${fmt(c.cycleLatencyMs.p99)} | ` +
        `${c.errors} | ${fmt(c.cpu.serverCores)} |`,
    );
  }
  lines.push('', 'Connect-cycle rows: requests/s counts HTTP POSTs; p50/p95/p99 are for a whole cycle.', '');
  for (const c of report.cycles) {
    lines.push(
      `- Connect cycles/s (${c.protocol}, ${c.label}, ${c.callers} callers): **${fmt(c.cyclesPerSec, 1)}**`,
    );
  }
  const m = report.memory;
  lines.push(
    `- RSS (${m.protocol}, ${m.clients} clients on new connections, ${m.completed} completed, ${m.errors} errors): ` +
      `before **${mib(m.rssBeforeKiB)}**, peak ${mib(m.rssPeakKiB)}, after **${mib(m.rssAfterKiB)}**, ` +
      `difference **${signedMib(m.rssDeltaKiB)}**` +
      (m.rssAfterEachRoundKiB
        ? `; after each round of ${m.clients}: ${m.rssAfterEachRoundKiB.map(mib).join(', ')} ` +
          `(after the last: **${signedMib(m.rssLastDeltaKiB)}**)`
        : ''),
  );
  const interference = (r) => (r.cpu.otherCores ?? 0) + (r.cpu.stealCores ?? 0);
  const noisy = [...report.throughput, ...report.cycles].filter((r) => interference(r) > 0.15);
  const before = report.meta.otherCoresBeforeStart ?? 0;
  if (noisy.length > 0 || before > 0.15) {
    const worst = Math.max(0, ...noisy.map(interference));
    lines.push(
      `- **WARNING: other processes or hypervisor steal took CPU** (${fmt(before)} cores just before the ` +
        `run; up to ${fmt(worst)} cores during ${noisy.length} scenario(s)): these numbers are not reliable.`,
    );
  }
  lines.push(
    `- ${report.meta.pinning.pinned ? 'Pinned' : 'NOT pinned'}: ${report.meta.pinning.why}. ` +
      `${report.meta.durationSec} s per scenario after ${report.meta.warmupSec} s warm-up; node ${report.meta.node}, ` +
      `${report.meta.cpu}.`,
  );
  return lines.join('\n');
}

async function main() {
  const pin = pinning();
  if (!pin.pinned) log(`WARNING: running without CPU pinning (${pin.why}); server and load share cores`);
  const otherCoresBeforeStart = await busyBeforeStart(log);
  const ws = makeWorkspace();
  let server;
  const cleanup = async () => {
    killLoadChildren();
    if (server) await stopServer(server);
    ws.remove();
  };
  process.once('SIGINT', () => {
    cleanup().finally(() => process.exit(130));
  });
  try {
    server = await startServer({ pin, workspace: ws.workspace, dataDir: ws.dataDir });
    log(`server pid ${server.pid} at ${server.url} (${pin.pinned ? 'core 0' : 'unpinned'})`);
    const expectText = ws.text;

    const legacy = legacyToolCall();
    await verify(server.url, `${LEGACY} tools/call`, legacy, expectText);
    const captured = await captureModern(server.url, expectText);
    const modern = captured.toolCall;
    await verify(server.url, `${MODERN} tools/call (replayed SDK request)`, modern, expectText);
    const shapeMatches =
      sameShape(modern, modernToolCall()) && sameShape(captured.discover, modernDiscover());
    if (!shapeMatches)
      log('note: the SDK request shape differs from mcp-requests.mjs; replaying the captured one');
    // converse is replayed in each revision's own request shape, with the tool name and arguments changed.
    const converse = {
      [LEGACY]: retarget(legacy, 'converse', CONVERSE_ARGS),
      [MODERN]: retarget(modern, 'converse', CONVERSE_ARGS),
    };
    for (const protocol of [LEGACY, MODERN]) {
      await verify(server.url, `${protocol} converse`, converse[protocol], expectText, checkAnswer);
    }

    const memory = await memoryScenario(pin, server, expectText);
    log(`memory: RSS ${mib(memory.rssBeforeKiB)} -> ${mib(memory.rssAfterKiB)}`);

    const throughput = [];
    const converseScenario = `converse "${CONVERSE_ARGS.prompt}" (rules, new conversation)`;
    const throughputSpecs = [
      ...[LEGACY, MODERN].flatMap((protocol) =>
        CONNECTIONS.map((connections) => ({
          scenario: 'tools/call read_text_file',
          protocol,
          connections,
          request: protocol === LEGACY ? legacy : modern,
        })),
      ),
      ...[LEGACY, MODERN].flatMap((protocol) =>
        CONVERSE_CONNECTIONS.map((connections) => ({
          scenario: converseScenario,
          protocol,
          connections,
          request: converse[protocol],
          expectIn: 'answer',
        })),
      ),
    ];
    for (const { scenario, protocol, connections, request, expectIn } of throughputSpecs) {
      log(`${scenario} ${protocol} x${connections}: ${WARMUP} s warm-up + ${DURATION} s`);
      const { result: r, cpu } = await withCpuAccounting(server.pid, () =>
        runLoad(pin, {
          mode: 'throughput',
          url: server.url,
          connections,
          duration: DURATION,
          warmup: WARMUP,
          request,
          expectText,
          ...(expectIn ? { expectIn } : {}),
        }),
      );
      log(
        `  ${r.requestsPerSec} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ${r.errors} errors; ` +
          `CPU cores: server ${cpu.serverCores}, load ${cpu.loadCores}, other processes ${cpu.otherCores}, steal ${cpu.stealCores}`,
      );
      throughput.push({ scenario, protocol, ...r, cpu });
    }

    const cycleSpecs = [
      {
        label: 'initialize → notifications/initialized → tools/call',
        protocol: LEGACY,
        steps: [
          { ...legacyInitialize(1), expect: 'result' },
          { ...legacyInitialized(), expect: 'accepted' },
          { ...legacyToolCall(2), expect: 'result', expectText },
        ],
      },
      {
        label: 'server/discover → tools/call',
        protocol: MODERN,
        steps: [
          { ...captured.discover, expect: 'result' },
          { ...modern, expect: 'result', expectText },
        ],
      },
    ];
    const cycles = [];
    for (const spec of cycleSpecs) {
      log(
        `connect cycle ${spec.protocol} (${spec.label}), ${CALLERS} callers: ${WARMUP} s warm-up + ${DURATION} s`,
      );
      const { result: r, cpu } = await withCpuAccounting(server.pid, () =>
        runLoad(pin, {
          mode: 'cycle',
          url: server.url,
          callers: CALLERS,
          duration: DURATION,
          warmup: WARMUP,
          steps: spec.steps,
        }),
      );
      log(
        `  ${r.cyclesPerSec} cycles/s, p50 ${r.cycleLatencyMs.p50} ms, ${r.errors} errors; ` +
          `CPU cores: server ${cpu.serverCores}, load ${cpu.loadCores}, other processes ${cpu.otherCores}, steal ${cpu.stealCores}`,
      );
      cycles.push({ scenario: 'connect cycle', label: spec.label, protocol: spec.protocol, ...r, cpu });
    }

    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
    const report = {
      meta: {
        date: new Date().toISOString(),
        bastion: pkg.version,
        node: process.version,
        cpu: `${os.cpus()[0]?.model ?? 'unknown CPU'} x${os.availableParallelism?.() ?? os.cpus().length}`,
        pinning: pin,
        otherCoresBeforeStart,
        durationSec: DURATION,
        warmupSec: WARMUP,
        serverPid: server.pid,
        benchFileBytes: Buffer.byteLength(expectText),
        requests: {
          [LEGACY]: { toolCall: legacy, converse: converse[LEGACY] },
          [MODERN]: {
            toolCall: modern,
            converse: converse[MODERN],
            discover: captured.discover,
            matchesDocumentedShape: shapeMatches,
          },
        },
      },
      throughput,
      cycles,
      memory,
    };
    const table = markdown(report);
    process.stdout.write(`\n${table}\n`);
    const out = path.join(REPO, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    // Formatted like the rest of the repo, so `prettier --check .` passes over the results too.
    const file = path.join(out, 'latest.json');
    const options = (await prettier.resolveConfig(file)) ?? {};
    const json = await prettier.format(JSON.stringify({ ...report, table }), { ...options, parser: 'json' });
    writeFileSync(file, json);
    log(`wrote ${path.relative(REPO, file)}`);
  } finally {
    await cleanup();
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
