// Load generator for run.mjs, meant to run on its own core (`taskset -c 1 node bench/load.mjs '<spec>'`).
// Takes one JSON spec as argv[2] and prints one JSON result line on stdout.
//
//   { "mode": "throughput", "url", "connections", "duration", "warmup", "request": {method,headers,body},
//     "expectText", "expectIn"? }           autocannon, keep-alive connections, one request shape; with
//                                           "expectIn": "answer" the text is looked for in a converse answer
//   { "mode": "cycle", "url", "callers", "duration", "warmup", "steps": [request & {expect}] }
//                                           callers each run the steps in order, over keep-alive sockets
//   { "mode": "clients", "url", "count", "concurrency", "steps": [...] }
//                                           count clients, each on a new TCP connection, closed afterwards
//   { "mode": "scenario", "url", "startVus", "stages": [{seconds,target}], "thinkMs", "settings",
//     "thresholds" }                        the k6 scripts' mix (load/lib/workload.js) by virtual users
//                                           ramped like k6's ramping-vus executor; see scenarioRun below
import { Buffer } from 'node:buffer';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { advance, evaluate, iterationSteps, newVuState, seedSteps } from '../load/lib/workload.js';
import { checkAnswer, checkResult } from './mcp-requests.mjs';

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
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.length ? sorted[sorted.length - 1] : null),
  };
}

/** One autocannon run; counts every completed response as ok, non-2xx, or a JSON-RPC/tool error. */
function cannon(spec, duration, record) {
  const counts = { ok: 0, non2xx: 0, rpcErrors: 0 };
  const latencies = [];
  const reasons = {};
  const check = spec.expectIn === 'answer' ? checkAnswer : checkResult;
  const request = {
    ...spec.request,
    onResponse(status, body) {
      if (status < 200 || status > 299) {
        counts.non2xx++;
        return;
      }
      const reason = check(body, spec.expectText);
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

/** Sends one request (POST unless it says otherwise) and reads the whole response. */
function exchange(url, agent, request, headers = request.headers) {
  return new Promise((resolve, reject) => {
    const method = request.method ?? 'POST';
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          session: res.headers['mcp-session-id'],
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

/**
 * Runs the steps in order; returns null on success or the first failure's reason. A session id a response
 * hands out (Mcp-Session-Id, stateful servers) goes on every later step, as a client sends it. A step
 * expects a result (checked, with `expectText` against the tool text), `accepted` (202) or `ok` (any 2xx).
 */
async function runSteps(url, agent, steps, stats) {
  let session;
  for (const [index, step] of steps.entries()) {
    let response;
    try {
      const headers = session ? { ...step.headers, 'mcp-session-id': session } : step.headers;
      response = await exchange(url, agent, step, headers);
    } catch (error) {
      return `step ${index + 1}: ${error.message}`;
    }
    session ??= response.session;
    stats.requests++;
    if (index > 0 && response.reused) stats.reusedSockets++;
    if (step.expect === 'accepted') {
      if (response.status !== 202) return `step ${index + 1}: HTTP ${response.status}, expected 202`;
      continue;
    }
    if (response.status < 200 || response.status > 299) return `step ${index + 1}: HTTP ${response.status}`;
    if (step.expect === 'ok') continue;
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

/**
 * Requests and checks of a scenario run, grouped by the step's tags (method, tool, revision) so a
 * threshold on a tagged sub-metric (`http_req_duration{tool:converse}`) can be computed like k6 does.
 */
class ScenarioMetrics {
  groups = new Map();

  group(tags) {
    const key = JSON.stringify([tags.method, tags.tool ?? '', tags.revision]);
    let group = this.groups.get(key);
    if (!group) {
      group = { tags, latencies: [], failed: 0, checksPassed: 0, checksFailed: 0 };
      this.groups.set(key, group);
    }
    return group;
  }

  /** The groups whose tags hold every `tag:value` of a k6 metric selector such as `{tool:converse}`. */
  select(selector) {
    const wanted = (selector ?? '')
      .split(',')
      .filter(Boolean)
      .map((pair) => pair.split(':').map((part) => part.trim()));
    return [...this.groups.values()].filter((g) => wanted.every(([key, value]) => g.tags[key] === value));
  }

  /** k6's built-in metrics this bench reproduces: http_req_duration (trend), http_req_failed and checks (rates). */
  summary(metricKey, rules) {
    const match = /^(\w+)(?:\{(.*)\})?$/.exec(metricKey);
    if (!match) throw new Error(`cannot read the metric ${metricKey}`);
    const [, metric, selector] = match;
    const groups = this.select(selector);
    if (metric === 'http_req_duration') {
      const samples = Float64Array.from(groups.flatMap((g) => g.latencies)).sort();
      const round = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
      const values = { count: samples.length, avg: null, min: null, med: null, max: null };
      if (samples.length > 0) {
        values.avg = round(samples.reduce((sum, v) => sum + v, 0) / samples.length);
        values.min = round(samples[0]);
        values.med = round(percentile(samples, 50));
        values.max = round(samples[samples.length - 1]);
      }
      const wantedPercentiles = new Set([90, 95, 99]);
      for (const rule of rules)
        for (const p of rule.matchAll(/p\((\d+(?:\.\d+)?)\)/g)) wantedPercentiles.add(Number(p[1]));
      for (const p of wantedPercentiles) values[`p(${p})`] = round(percentile(samples, p));
      return values;
    }
    const [passes, total] =
      metric === 'http_req_failed'
        ? [groups.reduce((n, g) => n + g.failed, 0), groups.reduce((n, g) => n + g.latencies.length, 0)]
        : metric === 'checks'
          ? [
              groups.reduce((n, g) => n + g.checksPassed, 0),
              groups.reduce((n, g) => n + g.checksPassed + g.checksFailed, 0),
            ]
          : [null, null];
    if (total === null) throw new Error(`the bench does not measure ${metric}`);
    return { rate: total === 0 ? null : passes / total, passes, fails: total - passes };
  }
}

/**
 * One scenario: seeds the workspace (like the k6 scripts' setup()), then runs virtual users through the
 * stages. Each virtual user has its own keep-alive connection and its own state (handshake, conversation),
 * runs lib/workload.js iterations back to back with the think time after each, and is ramped up and down
 * linearly like k6's ramping-vus executor; one ramped down finishes its iteration first. A request counts
 * as failed like k6's http_req_failed: no response, or a status of 400 and above.
 */
async function scenarioRun(spec) {
  const metrics = new ScenarioMetrics();
  const reasons = {};
  const send = async (agent, step, state) => {
    const group = metrics.group(step.tags);
    const t0 = performance.now();
    let status = 0;
    let body = '';
    let transportError = null;
    try {
      ({ status, body } = await exchange(spec.url, agent, step.request));
    } catch (error) {
      transportError = error.message;
    }
    group.latencies.push(performance.now() - t0);
    if (status === 0 || status >= 400) group.failed++;
    const evaluation = evaluate(step, status, body, state);
    for (const check of evaluation.checks) {
      if (check.ok) group.checksPassed++;
      else group.checksFailed++;
    }
    const problem = transportError ?? evaluation.problem;
    if (problem !== null) {
      const reason = `${step.label} (${step.revision}): ${problem.slice(0, 120)}`;
      reasons[reason] = (reasons[reason] ?? 0) + 1;
    }
    return evaluation;
  };

  const setupAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (const step of seedSteps(spec.settings)) {
    const { problem } = await send(setupAgent, step);
    if (problem !== null) throw new Error(`seeding the workspace failed at ${step.label}: ${problem}`);
  }
  setupAgent.destroy();

  const totalMs = spec.stages.reduce((sum, stage) => sum + stage.seconds * 1000, 0);
  const targetAt = (ms) => {
    let from = spec.startVus;
    let stageStart = 0;
    for (const stage of spec.stages) {
      const length = stage.seconds * 1000;
      if (ms < stageStart + length)
        return Math.round(from + ((stage.target - from) * (ms - stageStart)) / length);
      from = stage.target;
      stageStart += length;
    }
    return from;
  };
  const pool = [];
  let iterations = 0;
  let peakVus = 0;
  const runVu = async (vu) => {
    while (vu.active) {
      for (const step of iterationSteps(vu.state, spec.settings))
        advance(vu.state, step, await send(vu.agent, step, vu.state));
      iterations++;
      if (spec.thinkMs > 0) await sleep(spec.thinkMs);
    }
    vu.running = null;
  };
  const started = performance.now();
  for (let now = 0; now < totalMs; now = performance.now() - started) {
    const target = targetAt(now);
    pool.forEach((vu, index) => {
      vu.active = index < target;
      if (vu.active && !vu.running) vu.running = runVu(vu);
    });
    for (let index = pool.length; index < target; index++) {
      const vu = {
        active: true,
        running: null,
        state: newVuState(),
        agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
      };
      pool.push(vu);
      vu.running = runVu(vu);
    }
    peakVus = Math.max(peakVus, pool.filter((vu) => vu.running).length);
    await sleep(Math.min(100, totalMs - now));
  }
  for (const vu of pool) vu.active = false;
  await Promise.all(pool.map((vu) => vu.running));
  const elapsed = (performance.now() - started) / 1000;
  for (const vu of pool) vu.agent.destroy();

  const requests = [...metrics.groups.values()].reduce((n, g) => n + g.latencies.length, 0);
  const byTool = {};
  for (const group of metrics.groups.values()) {
    const key = group.tags.tool ?? group.tags.method;
    byTool[key] ??= metrics.summary(
      group.tags.tool ? `http_req_duration{tool:${key}}` : `http_req_duration{method:${key}}`,
      [],
    );
  }
  return {
    mode: 'scenario',
    seconds: Math.round(elapsed * 100) / 100,
    peakVus,
    iterations,
    requests,
    requestsPerSec: Math.round((requests / elapsed) * 10) / 10,
    latencyMs: metrics.summary('http_req_duration', []),
    latencyByToolMs: byTool,
    metrics: Object.fromEntries(
      Object.entries(spec.thresholds).map(([key, rules]) => [key, metrics.summary(key, rules)]),
    ),
    errorDetail: { reasons },
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const modes = { throughput, cycle, clients, scenario: scenarioRun };

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
