// Load generator for run.mjs, meant to run on its own core (`taskset -c 1 node bench/load.mjs '<spec>'`).
// Takes one JSON spec as argv[2] and prints one JSON result line on stdout.
//
//   { "mode": "throughput", "url", "connections", "duration", "warmup", "request": {method,headers,body},
//     "expectText" }                        autocannon, keep-alive connections, one request shape
//   { "mode": "cycle", "url", "callers", "duration", "warmup", "steps": [request & {expect}] }
//                                           callers each run the steps in order, over keep-alive sockets
//   { "mode": "clients", "url", "count", "concurrency", "steps": [...] }
//                                           count clients, each on a new TCP connection, closed afterwards
import { Buffer } from 'node:buffer';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { checkResult } from './mcp-requests.mjs';

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function latencySummary(samples) {
  const sorted = Float64Array.from(samples).sort();
  const round = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
  return {
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.length ? sorted[sorted.length - 1] : null),
  };
}

/** One autocannon run; counts every completed response as ok, non-2xx, or a JSON-RPC/tool error. */
function cannon(spec, duration, record) {
  const counts = { ok: 0, non2xx: 0, rpcErrors: 0 };
  const latencies = [];
  const reasons = {};
  const request = {
    ...spec.request,
    onResponse(status, body) {
      if (status < 200 || status > 299) {
        counts.non2xx++;
        return;
      }
      const reason = checkResult(body, spec.expectText);
      if (reason === null) {
        counts.ok++;
      } else {
        counts.rpcErrors++;
        reasons[reason] = (reasons[reason] ?? 0) + 1;
      }
    },
  };
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const instance = autocannon(
      { url: spec.url, connections: spec.connections, duration, requests: [request], timeout: 10 },
      (error, result) => {
        if (error) return reject(error);
        resolve({ result, counts, latencies, reasons, elapsed: (performance.now() - started) / 1000 });
      },
    );
    if (record) {
      instance.on('response', (_client, status, _bytes, responseTime) => {
        if (status >= 200 && status <= 299) latencies.push(responseTime);
      });
    }
  });
}

async function throughput(spec) {
  if (spec.warmup > 0) await cannon(spec, spec.warmup, false);
  const { result, counts, latencies, reasons, elapsed } = await cannon(spec, spec.duration, true);
  const responses = counts.ok + counts.non2xx + counts.rpcErrors;
  const transportErrors = result.errors + result.timeouts;
  return {
    mode: 'throughput',
    connections: spec.connections,
    seconds: Math.round(elapsed * 100) / 100,
    responses,
    requestsPerSec: Math.round((responses / elapsed) * 10) / 10,
    latencyMs: latencySummary(latencies),
    autocannonLatencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    errors: counts.non2xx + counts.rpcErrors + transportErrors,
    errorDetail: {
      non2xx: counts.non2xx,
      rpcErrors: counts.rpcErrors,
      socketErrors: result.errors,
      timeouts: result.timeouts,
      reasons,
    },
  };
}

/** POSTs one request and reads the whole response. */
function post(url, agent, request) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: request.headers }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          body: Buffer.concat(chunks).toString('utf8'),
          reused: req.reusedSocket,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.end(request.body);
  });
}

/** Runs the steps in order; returns null on success or the first failure's reason. */
async function runSteps(url, agent, steps, stats) {
  for (const [index, step] of steps.entries()) {
    let response;
    try {
      response = await post(url, agent, step);
    } catch (error) {
      return `step ${index + 1}: ${error.message}`;
    }
    stats.requests++;
    if (index > 0 && response.reused) stats.reusedSockets++;
    if (step.expect === 'accepted') {
      if (response.status !== 202) return `step ${index + 1}: HTTP ${response.status}, expected 202`;
      continue;
    }
    if (response.status < 200 || response.status > 299) return `step ${index + 1}: HTTP ${response.status}`;
    const reason = checkResult(response.body, step.expectText);
    if (reason !== null) return `step ${index + 1}: ${reason}`;
  }
  return null;
}

async function cycles(spec, duration, record) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.callers });
  const stats = { requests: 0, reusedSockets: 0 };
  const latencies = [];
  const reasons = {};
  let completed = 0;
  let failed = 0;
  const started = performance.now();
  const deadline = started + duration * 1000;
  const caller = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const reason = await runSteps(spec.url, agent, spec.steps, stats);
      if (reason === null) {
        completed++;
        if (record) latencies.push(performance.now() - t0);
      } else {
        failed++;
        reasons[reason] = (reasons[reason] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: spec.callers }, caller));
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  return { completed, failed, latencies, reasons, elapsed, requests: stats.requests };
}

async function cycle(spec) {
  if (spec.warmup > 0) await cycles(spec, spec.warmup, false);
  const r = await cycles(spec, spec.duration, true);
  return {
    mode: 'cycle',
    callers: spec.callers,
    stepsPerCycle: spec.steps.length,
    seconds: Math.round(r.elapsed * 100) / 100,
    cycles: r.completed,
    cyclesPerSec: Math.round((r.completed / r.elapsed) * 10) / 10,
    requestsPerSec: Math.round((r.requests / r.elapsed) * 10) / 10,
    cycleLatencyMs: latencySummary(r.latencies),
    errors: r.failed,
    errorDetail: { reasons: r.reasons },
  };
}

async function clients(spec) {
  let next = 0;
  let completed = 0;
  let failed = 0;
  const reasons = {};
  const stats = { requests: 0, reusedSockets: 0 };
  const started = performance.now();
  const worker = async () => {
    while (next < spec.count) {
      next++;
      // A fresh agent per client: its own TCP connection, reused for its requests, then closed.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const reason = await runSteps(spec.url, agent, spec.steps, stats);
      agent.destroy();
      if (reason === null) completed++;
      else {
        failed++;
        reasons[reason] = (reasons[reason] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  return {
    mode: 'clients',
    clients: spec.count,
    concurrency: spec.concurrency,
    completed,
    seconds: Math.round((performance.now() - started) / 10) / 100,
    requests: stats.requests,
    requestsOnReusedSocket: stats.reusedSockets,
    errors: failed,
    errorDetail: { reasons },
  };
}

const modes = { throughput, cycle, clients };

try {
  const spec = JSON.parse(process.argv[2] ?? '{}');
  const run = modes[spec.mode];
  if (!run) throw new Error(`unknown mode ${JSON.stringify(spec.mode)}`);
  const result = await run(spec);
  const { user, system } = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ ...result, cpuMs: Math.round((user + system) / 1000) })}\n`);
} catch (error) {
  process.stderr.write(`load.mjs: ${error.stack ?? error}\n`);
  process.exitCode = 1;
}
