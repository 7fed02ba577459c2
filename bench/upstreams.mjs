// What the gateway costs: `npm run bench:upstreams` (builds first). Starts Bastion (core 0) with two stdio
// upstreams, server-everything and server-memory, and drives it from core 1 with three 2025-06-18 tool calls:
// read_text_file (Bastion's own tool, the baseline), everything_echo (Bastion -> stdio upstream -> back) and
// memory_search_nodes (the same, with the upstream reading its graph file). Prints a markdown table, the
// latency the hop adds at 1 connection, and the RSS of Bastion and of each upstream before and after the
// load; writes bench/results/upstreams-latest.json.
//
// Environment: BENCH_DURATION (seconds per scenario, default 10), BENCH_WARMUP (seconds, default 2),
// BENCH_CONNECTIONS (default "1,16"), BENCH_NO_PIN=1 (skip taskset).
//
// The upstreams are Bastion's children and inherit its CPU affinity: with pinning, Bastion and both
// upstreams share core 0, as they would share one core in a one-CPU container.
import { Buffer } from 'node:buffer';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as prettier from 'prettier';
import {
  REPO,
  childPids,
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
  startServer,
  stopServer,
  withCpuAccounting,
} from './harness.mjs';
import { BENCH_FILE, LEGACY, checkResult, legacyRequest, legacyToolCall, parseRpc } from './mcp-requests.mjs';

const DURATION = envNumber('BENCH_DURATION', 10);
const WARMUP = process.env.BENCH_WARMUP === '0' ? 0 : envNumber('BENCH_WARMUP', 2);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '1,16').split(',').map(Number).filter(Boolean);
const READY_TIMEOUT_MS = 30_000;
const EXIT_TIMEOUT_MS = 5_000;

const MODULES = path.join(REPO, 'node_modules', '@modelcontextprotocol');
const UPSTREAMS = {
  everything: { script: path.join(MODULES, 'server-everything', 'dist', 'index.js'), args: ['stdio'] },
  memory: { script: path.join(MODULES, 'server-memory', 'dist', 'index.js'), args: [] },
};

// A small graph for server-memory: one entity and one relation match the query, so the search returns data.
const GRAPH = {
  entities: [
    { name: 'bench-x', entityType: 'probe', observations: ['found by the bench query'] },
    { name: 'other', entityType: 'probe', observations: ['not found by it'] },
    { name: 'third', entityType: 'probe', observations: ['nor this one'] },
  ],
  relations: [
    { from: 'bench-x', to: 'other', relationType: 'links' },
    { from: 'other', to: 'third', relationType: 'links' },
  ],
};
const SEARCH_QUERY = 'x';
// server-memory answers with the matching entities and the relations touching them, indented JSON.
const SEARCH_TEXT = JSON.stringify(
  { entities: [GRAPH.entities[0]], relations: [GRAPH.relations[0]] },
  null,
  2,
);

const SCENARIOS = [
  {
    key: 'baseline',
    tool: 'read_text_file',
    scenario: 'read_text_file (Bastion only)',
    request: legacyToolCall(),
    expect: (ws) => ws.text,
  },
  {
    key: 'echo',
    tool: 'everything_echo',
    scenario: 'everything_echo (stdio upstream)',
    upstream: 'everything',
    request: legacyRequest('tools/call', { name: 'everything_echo', arguments: { message: 'hello' } }),
    expect: () => 'Echo: hello',
  },
  {
    key: 'memory',
    tool: 'memory_search_nodes',
    scenario: 'memory_search_nodes (stdio upstream)',
    upstream: 'memory',
    request: legacyRequest('tools/call', {
      name: 'memory_search_nodes',
      arguments: { query: SEARCH_QUERY },
    }),
    expect: () => SEARCH_TEXT,
  },
];

const log = (message) => process.stderr.write(`[bench:upstreams] ${message}\n`);

/** Writes the upstreams file and server-memory's graph into the bench's temp directory. */
function writeUpstreams(root) {
  const memoryFile = path.join(root, 'memory.jsonl');
  writeFileSync(
    memoryFile,
    [
      ...GRAPH.entities.map((e) => JSON.stringify({ type: 'entity', ...e })),
      ...GRAPH.relations.map((r) => JSON.stringify({ type: 'relation', ...r })),
    ].join('\n') + '\n',
  );
  const entry = ({ script, args }) => ({ type: 'stdio', command: process.execPath, args: [script, ...args] });
  // The default prefix is the name and an underscore: everything_echo, memory_search_nodes.
  const servers = {
    everything: entry(UPSTREAMS.everything),
    memory: { ...entry(UPSTREAMS.memory), env: { MEMORY_FILE_PATH: memoryFile } },
  };
  const file = path.join(root, 'mcp.json');
  writeFileSync(file, JSON.stringify({ servers }, null, 2));
  return file;
}

/** Polls tools/list until both upstreams' tools are offered. */
async function waitForTools(url, names) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let listed = [];
  while (Date.now() < deadline) {
    const { status, body } = await post(url, legacyRequest('tools/list', {}));
    if (status === 200 && checkResult(body) === null) {
      listed = parseRpc(body).result.tools.map((t) => t.name);
      if (names.every((name) => listed.includes(name))) return listed;
    }
    await sleep(100);
  }
  throw new Error(
    `tools/list did not offer ${names.join(', ')} in ${READY_TIMEOUT_MS} ms (had ${listed.length})`,
  );
}

/** Fails the run unless the request answers 200 with a tool result whose first text block is `expectText`. */
async function verify(url, label, request, expectText) {
  const { status, body } = await post(url, request);
  const reason = status >= 200 && status <= 299 ? checkResult(body, expectText) : `HTTP ${status}`;
  if (reason !== null) throw new Error(`${label} verification failed: ${reason}\n${body.slice(0, 500)}`);
  log(`${label}: verified (HTTP ${status}, ${body.length} bytes)`);
}

/** The server's children that run each upstream, found by their command line. */
function findUpstreams(serverPid) {
  const found = {};
  for (const pid of childPids(serverPid)) {
    let argv;
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    for (const [name, { script }] of Object.entries(UPSTREAMS)) if (argv.includes(script)) found[name] = pid;
  }
  const missing = Object.keys(UPSTREAMS).filter((name) => !(name in found));
  if (missing.length > 0) throw new Error(`no child process of the server runs ${missing.join(', ')}`);
  return found;
}

function cpusAllowed(pid) {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Alive and not a zombie waiting to be reaped. */
function running(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Waits for each PID to end; kills those still running after the deadline. */
async function ensureGone(pids) {
  const deadline = Date.now() + EXIT_TIMEOUT_MS;
  while (pids.some(running) && Date.now() < deadline) await sleep(50);
  const outcome = {};
  for (const pid of pids) {
    if (!running(pid)) {
      outcome[pid] = 'exited';
      continue;
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // ended meanwhile
    }
    outcome[pid] = 'killed';
  }
  return outcome;
}

function rssOf(serverPid, upstreams) {
  return {
    bastion: rssKiB(serverPid),
    ...Object.fromEntries(Object.entries(upstreams).map(([name, pid]) => [name, rssKiB(pid)])),
  };
}

const mib = (kib) => (kib === null || kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`);
const signed = (v) => (v === null ? 'n/a' : `${v >= 0 ? '+' : ''}${fmt(v)}`);

function markdown(report) {
  const lines = [
    '| scenario | connections | calls/s | p50 (ms) | p99 (ms) | errors | Bastion CPU (cores) | upstream CPU (cores) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of report.throughput) {
    const upstreamCpu = r.upstream ? fmt(r.cpu.childCores?.[r.upstream]) : '-';
    lines.push(
      `| ${r.scenario} | ${r.connections} | ${fmt(r.requestsPerSec, 0)} | ${fmt(r.latencyMs.p50)} | ` +
        `${fmt(r.latencyMs.p99)} | ${r.errors} | ${fmt(r.cpu.serverCores)} | ${upstreamCpu} |`,
    );
  }
  lines.push('');
  for (const [key, added] of Object.entries(report.addedLatencyMs)) {
    lines.push(
      `- Added latency of ${key} over read_text_file at 1 connection: p50 **${signed(added.p50)} ms**, ` +
        `p99 ${signed(added.p99)} ms`,
    );
  }
  const { before, after } = report.rssKiB;
  for (const name of Object.keys(before)) {
    lines.push(`- RSS of ${name}: ${mib(before[name])} before the load, ${mib(after[name])} after`);
  }
  const noisy = report.throughput.filter((r) => (r.cpu.otherCores ?? 0) + (r.cpu.stealCores ?? 0) > 0.15);
  if (noisy.length > 0 || (report.meta.otherCoresBeforeStart ?? 0) > 0.15) {
    lines.push(
      `- **WARNING: other processes or hypervisor steal took CPU** (${fmt(report.meta.otherCoresBeforeStart)} ` +
        `cores just before the run; ${noisy.length} scenario(s) above 0.15 cores): these numbers are not reliable.`,
    );
  }
  const cpus = Object.entries(report.meta.upstreams)
    .map(([name, u]) => `${name} ${u.cpusAllowed ?? '?'}`)
    .join(', ');
  lines.push(
    `- ${report.meta.pinning.pinned ? 'Pinned' : 'NOT pinned'}: ${report.meta.pinning.why}; upstreams' CPUs: ` +
      `${cpus}. ${report.meta.durationSec} s per scenario after ${report.meta.warmupSec} s warm-up; ` +
      `${report.meta.protocol}; node ${report.meta.node}, ${report.meta.cpu}.`,
  );
  return lines.join('\n');
}

/** Verifies each scenario once, then measures it at every connection count. */
async function measure(pin, server, upstreams, ws) {
  for (const s of SCENARIOS) await verify(server.url, s.scenario, s.request, s.expect(ws));
  const rows = [];
  for (const s of SCENARIOS) {
    for (const connections of CONNECTIONS) {
      log(`${s.scenario} x${connections}: ${WARMUP} s warm-up + ${DURATION} s`);
      const { result: r, cpu } = await withCpuAccounting(
        server.pid,
        () =>
          runLoad(pin, {
            mode: 'throughput',
            url: server.url,
            connections,
            duration: DURATION,
            warmup: WARMUP,
            request: s.request,
            expectText: s.expect(ws),
          }),
        upstreams,
      );
      log(
        `  ${r.requestsPerSec} calls/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ${r.errors} errors; ` +
          `CPU cores: Bastion ${cpu.serverCores}, upstreams ${JSON.stringify(cpu.childCores)}, ` +
          `load ${cpu.loadCores}, other ${cpu.otherCores}, steal ${cpu.stealCores}`,
      );
      rows.push({ key: s.key, scenario: s.scenario, upstream: s.upstream ?? null, ...r, cpu });
    }
  }
  return rows;
}

function addedLatency(rows) {
  const at1 = (key) => rows.find((r) => r.key === key && r.connections === 1);
  const baseline = at1('baseline');
  if (!baseline) return {};
  const added = {};
  for (const s of SCENARIOS.filter((x) => x.upstream)) {
    const row = at1(s.key);
    if (!row) continue;
    const diff = (p) =>
      row.latencyMs[p] === null || baseline.latencyMs[p] === null
        ? null
        : Math.round((row.latencyMs[p] - baseline.latencyMs[p]) * 1000) / 1000;
    added[s.tool] = { p50: diff('p50'), p99: diff('p99') };
  }
  return added;
}

async function main() {
  const pin = pinning();
  if (!pin.pinned) log(`WARNING: running without CPU pinning (${pin.why}); server and load share cores`);
  const otherCoresBeforeStart = await busyBeforeStart(log);
  const ws = makeWorkspace();
  const upstreamsFile = writeUpstreams(ws.root);
  let server;
  let upstreamPids = [];
  const cleanup = async () => {
    killLoadChildren();
    let shutdown = {};
    if (server) {
      upstreamPids = [...new Set([...upstreamPids, ...childPids(server.pid)])];
      await stopServer(server);
      shutdown = await ensureGone(upstreamPids);
    }
    ws.remove();
    return shutdown;
  };
  process.once('SIGINT', () => {
    cleanup().finally(() => process.exit(130));
  });

  let report;
  let shutdown;
  try {
    server = await startServer({
      pin,
      workspace: ws.workspace,
      dataDir: ws.dataDir,
      env: { BASTION_UPSTREAMS: upstreamsFile },
    });
    log(`server pid ${server.pid} at ${server.url} (${pin.pinned ? 'core 0' : 'unpinned'})`);
    const tools = await waitForTools(server.url, ['everything_echo', 'memory_search_nodes']);
    const upstreams = findUpstreams(server.pid);
    upstreamPids = Object.values(upstreams);
    log(`${tools.length} tools listed; upstream pids ${JSON.stringify(upstreams)}`);

    await sleep(1000);
    const rssBefore = rssOf(server.pid, upstreams);
    const throughput = await measure(pin, server, upstreams, ws);
    await sleep(1000);
    const rssAfter = rssOf(server.pid, upstreams);

    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
    report = {
      meta: {
        date: new Date().toISOString(),
        bastion: pkg.version,
        node: process.version,
        cpu: `${os.cpus()[0]?.model ?? 'unknown CPU'} x${os.availableParallelism?.() ?? os.cpus().length}`,
        pinning: pin,
        otherCoresBeforeStart,
        durationSec: DURATION,
        warmupSec: WARMUP,
        protocol: LEGACY,
        serverPid: server.pid,
        benchFile: { name: BENCH_FILE, bytes: Buffer.byteLength(ws.text) },
        upstreams: Object.fromEntries(
          Object.entries(upstreams).map(([name, pid]) => [name, { pid, cpusAllowed: cpusAllowed(pid) }]),
        ),
        toolsListed: tools.length,
        requests: Object.fromEntries(SCENARIOS.map((s) => [s.key, s.request])),
      },
      throughput,
      addedLatencyMs: addedLatency(throughput),
      rssKiB: { before: rssBefore, after: rssAfter },
    };
  } finally {
    shutdown = await cleanup();
  }

  const killed = Object.entries(shutdown).filter(([, outcome]) => outcome === 'killed');
  if (killed.length > 0) {
    log(`WARNING: upstream pid(s) ${killed.map(([pid]) => pid).join(', ')} outlived the server; killed`);
  } else {
    log(`upstream pids ${Object.keys(shutdown).join(', ')} exited with the server`);
  }
  report.shutdown = shutdown;
  const table = markdown(report);
  process.stdout.write(`\n${table}\n`);
  const out = path.join(REPO, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  // Formatted like the rest of the repo, so `prettier --check .` passes over the results too.
  const file = path.join(out, 'upstreams-latest.json');
  const options = (await prettier.resolveConfig(file)) ?? {};
  const json = await prettier.format(JSON.stringify({ ...report, table }), { ...options, parser: 'json' });
  writeFileSync(file, json);
  log(`wrote ${path.relative(REPO, file)}`);
}

main().catch((error) => {
  process.stderr.write(`bench:upstreams failed: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
