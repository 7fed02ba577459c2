// The k6 scenarios of load/ without k6: `node bench/scenarios.mjs <smoke|average|stress|spike|soak>` (after
// `npm run build`). The same stage shape (load/lib/scenarios.js), request mix (load/lib/workload.js) and
// thresholds as `k6 run load/<name>.js`, against a fresh server on core 0, with the virtual users on core 1
// (bench/load.mjs). Prints every threshold as pass or fail, and exits 1 if one fails.
//
// Environment: BENCH_SCALE (multiplies every stage's length, default 1; 0.1 runs the hour-long soak in about
// 7 minutes), BENCH_VUS (peak virtual users), BENCH_DURATION (the steady stage: 90s, 5m, 1h), BENCH_THINK_TIME
// (seconds between iterations, default 1), BENCH_REVISION (both, 2025-06-18 or 2026-07-28), BENCH_MIX (all or
// files), BENCH_NO_PIN=1 (skip taskset).
import { loadConfig } from '../load/lib/config.js';
import { SCENARIOS, stagesFor, thresholdsFor } from '../load/lib/scenarios.js';
import {
  fmt,
  killLoadChildren,
  makeWorkspace,
  pinning,
  rssKiB,
  runLoad,
  startServer,
  stopServer,
  withCpuAccounting,
} from './harness.mjs';

const log = (message) => process.stderr.write(`[bench] ${message}\n`);

/** Compares one k6 threshold rule (`rate<0.01`, `p(95)<200`) with a metric's summary. */
function judge(rule, summary) {
  const match = /^\s*(\w+(?:\(\d+(?:\.\d+)?\))?)\s*(<=|>=|===|==|!==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(
    rule,
  );
  if (!match) throw new Error(`cannot read the threshold ${JSON.stringify(rule)}`);
  const [, aggregate, operator, limitText] = match;
  const value = summary[aggregate];
  if (value === undefined) throw new Error(`the bench does not compute ${aggregate} (threshold ${rule})`);
  const limit = Number(limitText);
  const ok =
    value !== null &&
    {
      '<': value < limit,
      '<=': value <= limit,
      '>': value > limit,
      '>=': value >= limit,
      '==': value === limit,
      '===': value === limit,
      '!=': value !== limit,
      '!==': value !== limit,
    }[operator];
  return { aggregate, value, ok };
}

function settingsFromEnv(env) {
  const config = loadConfig({
    VUS: env.BENCH_VUS,
    DURATION: env.BENCH_DURATION,
    THINK_TIME: env.BENCH_THINK_TIME,
    REVISION: env.BENCH_REVISION,
    MIX: env.BENCH_MIX,
  });
  const scale = env.BENCH_SCALE ? Number(env.BENCH_SCALE) : 1;
  if (!(scale > 0)) throw new Error('BENCH_SCALE must be a number above 0');
  return { config, scale };
}

const mib = (kib) => (kib === null ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`);

async function main() {
  const name = process.argv[2];
  if (!SCENARIOS[name]) {
    process.stderr.write(`usage: node bench/scenarios.mjs <${Object.keys(SCENARIOS).join('|')}>\n`);
    process.exitCode = 2;
    return;
  }
  const { config, scale } = settingsFromEnv(process.env);
  const shape = stagesFor(name, { vus: config.vus, holdSeconds: config.holdSeconds, scale });
  const pin = pinning();
  if (!pin.pinned) log(`WARNING: running without CPU pinning (${pin.why}); server and load share cores`);
  const ws = makeWorkspace();
  let server;
  process.once('SIGINT', () => {
    killLoadChildren();
    (server ? stopServer(server) : Promise.resolve()).finally(() => {
      ws.remove();
      process.exit(130);
    });
  });
  try {
    server = await startServer({ pin, workspace: ws.workspace, dataDir: ws.dataDir });
    const stages = shape.stages.map((s) => `${s.seconds}s→${s.target}`).join(', ');
    log(
      `${name}: ${shape.seconds} s (scale ${scale}), start ${shape.startVus} VUs, stages ${stages}; ` +
        `think ${config.thinkSeconds} s, revision ${config.revision}, mix ${config.mix}; server pid ${server.pid}`,
    );
    const thresholds = thresholdsFor(config.mix);
    const rssBefore = rssKiB(server.pid);
    const { result, cpu } = await withCpuAccounting(server.pid, () =>
      runLoad(pin, {
        mode: 'scenario',
        url: server.url,
        startVus: shape.startVus,
        stages: shape.stages,
        thinkMs: config.thinkSeconds * 1000,
        settings: { revision: config.revision, mix: config.mix },
        thresholds,
      }),
    );
    const rssAfter = rssKiB(server.pid);

    const lines = ['| threshold | value | result |', '|---|---:|---|'];
    let failed = 0;
    for (const [metric, rules] of Object.entries(thresholds)) {
      for (const rule of rules) {
        const { aggregate, value, ok } = judge(rule, result.metrics[metric]);
        if (!ok) failed++;
        const shown = aggregate === 'rate' ? `${fmt(value * 100, 3)}%` : `${fmt(value)} ms`;
        lines.push(`| ${metric} ${rule} | ${value === null ? 'no data' : shown} | ${ok ? 'pass' : 'FAIL'} |`);
      }
    }
    lines.push(
      '',
      '| requests | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |',
      '|---|---:|---:|---:|---:|---:|',
    );
    const row = (label, l, rps) =>
      `| ${label} | ${rps} | ${fmt(l.med)} | ${fmt(l['p(95)'])} | ${fmt(l['p(99)'])} | ${fmt(l.max)} |`;
    lines.push(row(`all (${result.requests})`, result.latencyMs, fmt(result.requestsPerSec, 1)));
    for (const [tool, l] of Object.entries(result.latencyByToolMs)) {
      lines.push(row(`${tool} (${l.count})`, l, fmt(l.count / result.seconds, 1)));
    }
    const failedRequests = result.metrics.http_req_failed?.passes ?? 'n/a';
    const failedChecks = result.metrics.checks?.fails ?? 'n/a';
    lines.push(
      '',
      `- ${result.iterations} iterations in ${result.seconds} s, peak ${result.peakVus} VUs; ` +
        `${failedRequests} failed requests, ${failedChecks} failed checks.`,
      `- Server CPU ${fmt(cpu.serverCores)} cores, load generator ${fmt(cpu.loadCores)}, other processes ` +
        `${fmt(cpu.otherCores)}, steal ${fmt(cpu.stealCores)}; RSS ${mib(rssBefore)} before, ${mib(rssAfter)} ` +
        `after. ${pin.pinned ? 'Pinned' : 'NOT pinned'}: ${pin.why}.`,
    );
    if ((cpu.otherCores ?? 0) + (cpu.stealCores ?? 0) > 0.15) {
      lines.push(
        '- **WARNING: other processes or hypervisor steal took CPU**: these numbers are not reliable.',
      );
    }
    const reasons = Object.entries(result.errorDetail.reasons);
    if (reasons.length > 0) {
      lines.push('- Failures:', ...reasons.map(([reason, count]) => `  - ${count} × ${reason}`));
    }
    process.stdout.write(
      `\n${lines.join('\n')}\n\n${name}: ${failed === 0 ? 'PASSED' : `FAILED (${failed})`}\n`,
    );
    process.exitCode = failed === 0 ? 0 : 1;
  } finally {
    killLoadChildren();
    if (server) await stopServer(server);
    ws.remove();
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
