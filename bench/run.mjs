// Load harness: `npm run bench` (builds first). Starts Bastion on core 0, drives it from core 1, measures
// the reference servers (the official SDK v1 server and a raw node:http server answering the same bytes)
// and Bastion with its optional parts off in the same run, pinned alike, and prints markdown tables, the
// ratios and the targets; writes bench/results/latest.json.
//
// Environment: BENCH_DURATION (seconds per measured scenario, default 10), BENCH_WARMUP (seconds, default 2),
// BENCH_CONNECTIONS (Bastion's own rows, default "1,16"), BENCH_COMPARE_CONNECTIONS (the comparison with the
// references, default 64), BENCH_REPEAT (comparison repetitions, interleaved; medians reported, default 2),
// BENCH_COLD_STARTS (launches of each stdio server, default 5), BENCH_CONVERSE_CONNECTIONS (converse rows, default "1,16"),
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
import { median, stdioColdStart } from './cold-start.mjs';
import { sdkV1CycleSteps, sdkV1ToolCall, startRaw, startSdkV1 } from './references.mjs';
import { ratios, targets } from './targets.mjs';
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
const CONNECTIONS = connectionList(process.env.BENCH_CONNECTIONS ?? '1,16');
const COMPARE_CONNECTIONS = envNumber('BENCH_COMPARE_CONNECTIONS', 64);
const REPEAT = envNumber('BENCH_REPEAT', 2);
const COLD_STARTS = envNumber('BENCH_COLD_STARTS', 5);
const SERVE_STARTS = 3;
// The optional parts of the production surface; authentication, the Origin check, request ids and security
// headers are not optional and stay on.
const OPTIONAL_OFF = {
  BASTION_RATE_LIMIT_ENABLED: 'false',
  BASTION_AUDIT_ENABLED: 'false',
  BASTION_METRICS_ENABLED: 'false',
  BASTION_LOG_LEVEL: 'warn',
};
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
  const { status, body, contentType } = await post(url, request);
  const reason = status >= 200 && status <= 299 ? check(body, expectText) : `HTTP ${status}`;
  if (reason !== null) throw new Error(`${label} verification failed: ${reason}\n${body.slice(0, 500)}`);
  log(`${label}: verified (HTTP ${status}, ${body.length} bytes, the result holds the file text)`);
  return { contentType, body };
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
  if (m.rssIdleKiB !== undefined)
    lines.push(`- Idle RSS (production defaults, just started): **${mib(m.rssIdleKiB)}**`);
  const cold = report.coldStart;
  lines.push(
    `- Cold start, stdio (spawn → answer to initialize, median of ${cold.stdio.runs.bastion.length}): Bastion ` +
      `**${cold.stdio.bastionMs} ms**, reference filesystem server ${cold.stdio.referenceMs} ms ` +
      `(**${fmt(cold.stdio.ratio)}×**; runs ${cold.stdio.runs.bastion.join('/')} vs ${cold.stdio.runs.reference.join('/')} ms)`,
    `- Cold start, serve (spawn → port open, median of ${cold.serve.runs.length}): Bastion **${cold.serve.bastionMs} ms** ` +
      `(SDK v1 reference ${cold.serve.sdkV1Ms} ms)`,
  );
  const cmp = report.comparison;
  const serverName = {
    'sdk-v1': 'official SDK v1 (express, stateful, one session)',
    raw: 'raw node:http answering the same bytes',
    defaults: 'Bastion, production defaults',
    'optional-off': 'Bastion, rate limits, audit and metrics off, log level warn',
  };
  lines.push(
    '',
    `Comparison: tools/call read_text_file, ${cmp.connections} connections, median of ${cmp.repetitions} ` +
      'interleaved repetitions, every server pinned alike.',
    '',
    '| server | protocol | calls/s | p50 (ms) | p99 (ms) | repetitions (calls/s) | errors | server CPU (cores) |',
    '|---|---|---:|---:|---:|---|---:|---:|',
  );
  for (const r of cmp.rows) {
    lines.push(
      `| ${serverName[r.server]} | ${r.protocol} | ${fmt(r.requestsPerSec, 0)} | ${fmt(r.latencyMs.p50)} | ` +
        `${fmt(r.latencyMs.p99)} | ${r.repetitions.map((v) => fmt(v, 0)).join(', ')} | ${r.errors} | ` +
        `${fmt(r.cpu.serverCores)} |`,
    );
  }
  lines.push(
    '',
    '| Bastion | protocol | calls/s | × SDK v1 | × raw | p99 ÷ SDK v1 p99 |',
    '|---|---|---:|---:|---:|---:|',
  );
  for (const r of report.ratios) {
    lines.push(
      `| ${r.server} | ${r.protocol} | ${fmt(r.callsPerSec, 0)} | ${fmt(r.toSdkV1)} | ${fmt(r.toRaw)} | ` +
        `${fmt(r.p99ToSdkV1)} |`,
    );
  }
  lines.push('', '| target | this run | met |', '|---|---|---|');
  for (const t of report.targets) lines.push(`| ${t.target} | ${t.figure} | ${t.met ? 'yes' : '**no**'} |`);
  lines.push('');
  const interference = (r) => (r.cpu.otherCores ?? 0) + (r.cpu.stealCores ?? 0);
  const measuredRows = [...report.throughput, ...report.cycles, ...cmp.rows];
  const noisy = measuredRows.filter((r) => interference(r) > 0.15);
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

/** One throughput measurement with the server's CPU accounted; logged as it completes. */
async function measure(pin, pid, label, spec) {
  log(`${label} x${spec.connections}: ${spec.warmup} s warm-up + ${spec.duration} s`);
  const { result: r, cpu } = await withCpuAccounting(pid, () =>
    runLoad(pin, { mode: 'throughput', ...spec }),
  );
  log(
    `  ${r.requestsPerSec} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ${r.errors} errors; ` +
      `CPU cores: server ${cpu.serverCores}, load ${cpu.loadCores}, other processes ${cpu.otherCores}, steal ${cpu.stealCores}`,
  );
  return { ...r, cpu };
}

/** One connect-cycle measurement. */
async function measureCycles(pin, pid, label, spec) {
  log(`connect cycle ${label}, ${CALLERS} callers: ${WARMUP} s warm-up + ${DURATION} s`);
  const { result: r, cpu } = await withCpuAccounting(pid, () =>
    runLoad(pin, { mode: 'cycle', callers: CALLERS, duration: DURATION, warmup: WARMUP, ...spec }),
  );
  log(
    `  ${r.cyclesPerSec} cycles/s, p50 ${r.cycleLatencyMs.p50} ms, ${r.errors} errors; ` +
      `CPU cores: server ${cpu.serverCores}, load ${cpu.loadCores}, other processes ${cpu.otherCores}, steal ${cpu.stealCores}`,
  );
  return { ...r, cpu };
}

/** The row whose requests/s is the median of the repetitions (the lower middle for an even count). */
function medianRow(rows) {
  const sorted = [...rows].sort((a, b) => a.requestsPerSec - b.requestsPerSec);
  return { ...sorted[(sorted.length - 1) >> 1], repetitions: rows.map((r) => r.requestsPerSec) };
}

/** Launch times: `bastion stdio` against the reference filesystem server, and `serve` to its port. */
async function coldStarts(pin) {
  const ws = makeWorkspace();
  try {
    log(`cold start: ${COLD_STARTS} launches each of bastion stdio and the reference filesystem server`);
    const stdio = await stdioColdStart(pin, ws, COLD_STARTS);
    log(`  stdio initialize: Bastion ${stdio.bastionMs} ms, reference ${stdio.referenceMs} ms`);
    const serveRuns = [];
    for (let run = 0; run <= SERVE_STARTS; run++) {
      const server = await startServer({ pin, workspace: ws.workspace, dataDir: ws.dataDir });
      await stopServer(server);
      if (run > 0) serveRuns.push(Math.round(server.startupMs));
    }
    const sdk = await startSdkV1(pin, ws.workspace);
    await stopServer(sdk);
    const serve = { bastionMs: median(serveRuns), runs: serveRuns, sdkV1Ms: Math.round(sdk.startupMs) };
    log(`  serve to port: Bastion ${serve.bastionMs} ms (SDK v1 reference ${serve.sdkV1Ms} ms)`);
    return { stdio, serve };
  } finally {
    ws.remove();
  }
}

async function main() {
  const pin = pinning();
  if (!pin.pinned) log(`WARNING: running without CPU pinning (${pin.why}); server and load share cores`);
  const otherCoresBeforeStart = await busyBeforeStart(log);
  const coldStart = await coldStarts(pin);
  const ws = makeWorkspace();
  const servers = [];
  const cleanup = async () => {
    killLoadChildren();
    await Promise.all(servers.map((server) => stopServer(server)));
    ws.remove();
  };
  process.once('SIGINT', () => {
    cleanup().finally(() => process.exit(130));
  });
  try {
    const server = await startServer({ pin, workspace: ws.workspace, dataDir: ws.dataDir });
    servers.push(server);
    log(`server pid ${server.pid} at ${server.url} (${pin.pinned ? 'core 0' : 'unpinned'})`);
    await sleep(1000);
    const rssIdleKiB = rssKiB(server.pid);
    log(`idle RSS ${mib(rssIdleKiB)}`);
    const expectText = ws.text;

    const legacy = legacyToolCall();
    const answers = {};
    answers[LEGACY] = await verify(server.url, `${LEGACY} tools/call`, legacy, expectText);
    const captured = await captureModern(server.url, expectText);
    const modern = captured.toolCall;
    answers[MODERN] = await verify(
      server.url,
      `${MODERN} tools/call (replayed SDK request)`,
      modern,
      expectText,
    );
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

    const memory = { rssIdleKiB, ...(await memoryScenario(pin, server, expectText)) };
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
      const r = await measure(pin, server.pid, `${scenario} ${protocol}`, {
        url: server.url,
        connections,
        duration: DURATION,
        warmup: WARMUP,
        request,
        expectText,
        ...(expectIn ? { expectIn } : {}),
      });
      throughput.push({ scenario, protocol, ...r });
    }

    const sdkV1 = await startSdkV1(pin, ws.workspace);
    servers.push(sdkV1);
    const cycleSpecs = [
      {
        server: 'defaults',
        target: server,
        label: 'initialize → notifications/initialized → tools/call',
        protocol: LEGACY,
        steps: [
          { ...legacyInitialize(1), expect: 'result' },
          { ...legacyInitialized(), expect: 'accepted' },
          { ...legacyToolCall(2), expect: 'result', expectText },
        ],
      },
      {
        server: 'defaults',
        target: server,
        label: 'server/discover → tools/call',
        protocol: MODERN,
        steps: [
          { ...captured.discover, expect: 'result' },
          { ...modern, expect: 'result', expectText },
        ],
      },
      {
        server: 'sdk-v1',
        target: sdkV1,
        label: 'SDK v1 reference: initialize → tools/call → DELETE',
        protocol: LEGACY,
        steps: sdkV1CycleSteps(expectText),
      },
    ];
    const cycles = [];
    for (const { server: name, target, label, protocol, steps } of cycleSpecs) {
      const r = await measureCycles(pin, target.pid, `${protocol} (${label})`, { url: target.url, steps });
      cycles.push({ scenario: 'connect cycle', server: name, label, protocol, ...r });
    }

    const comparison = await compare(pin, {
      server,
      sdkV1,
      answers,
      legacy,
      modern,
      expectText,
      ws,
      servers,
    });

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
      coldStart,
      throughput,
      cycles,
      comparison,
      memory,
    };
    report.ratios = ratios(report);
    report.targets = targets(report);
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

/**
 * Bastion with production defaults and with the optional parts off, the SDK v1 reference and the raw
 * reference, each at COMPARE_CONNECTIONS callers, REPEAT times in turn so drift on a shared machine falls
 * on every server alike; the median of each.
 */
async function compare(pin, { server, sdkV1, answers, legacy, modern, expectText, ws, servers }) {
  const offDir = path.join(ws.root, 'data-optional-off');
  const off = await startServer({ pin, workspace: ws.workspace, dataDir: offDir, env: OPTIONAL_OFF });
  servers.push(off);
  const raw = await startRaw(pin, ws.dataDir, answers);
  servers.push(raw);
  const sdkCall = await sdkV1ToolCall(sdkV1.url);
  await verify(sdkV1.url, 'SDK v1 reference tools/call', sdkCall, expectText);
  for (const protocol of [LEGACY, MODERN]) {
    const request = protocol === LEGACY ? legacy : modern;
    await verify(off.url, `optional parts off ${protocol} tools/call`, request, expectText);
    await verify(raw.url, `raw reference ${protocol} answer`, request, expectText);
  }
  const targets = [
    { server: 'sdk-v1', protocol: LEGACY, target: sdkV1, request: sdkCall },
    ...[LEGACY, MODERN].flatMap((protocol) => {
      const request = protocol === LEGACY ? legacy : modern;
      return [
        { server: 'raw', protocol, target: raw, request },
        { server: 'defaults', protocol, target: server, request },
        { server: 'optional-off', protocol, target: off, request },
      ];
    }),
  ];
  const measured = new Map(targets.map((t) => [t, []]));
  for (let repetition = 1; repetition <= REPEAT; repetition++) {
    for (const t of targets) {
      const label = `compare ${repetition}/${REPEAT}: ${t.server} ${t.protocol}`;
      measured.get(t).push(
        await measure(pin, t.target.pid, label, {
          url: t.target.url,
          connections: COMPARE_CONNECTIONS,
          duration: DURATION,
          warmup: WARMUP,
          request: t.request,
          expectText,
        }),
      );
    }
  }
  return {
    connections: COMPARE_CONNECTIONS,
    repetitions: REPEAT,
    optionalOff: OPTIONAL_OFF,
    rows: targets.map((t) => ({ server: t.server, protocol: t.protocol, ...medianRow(measured.get(t)) })),
  };
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
