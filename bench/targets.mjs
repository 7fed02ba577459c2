// The ratios and targets of a `npm run bench` report: Bastion against the references measured in the same
// run, production defaults against the optional parts switched off, and the cold starts.
import { fmt } from './harness.mjs';
import { LEGACY, MODERN } from './mcp-requests.mjs';

const ratio = (a, b) => (a && b ? Math.round((a / b) * 100) / 100 : null);

/** The comparison row of one server and revision (medians over the repetitions). */
const row = (report, server, protocol) =>
  report.comparison.rows.find((r) => r.server === server && r.protocol === protocol);

/** Bastion's rows as ratios to both references, per revision and configuration. */
export function ratios(report) {
  const sdk = row(report, 'sdk-v1', LEGACY);
  return ['defaults', 'optional-off'].flatMap((server) =>
    [LEGACY, MODERN].map((protocol) => {
      const bastion = row(report, server, protocol);
      const raw = row(report, 'raw', protocol);
      return {
        server,
        protocol,
        callsPerSec: bastion.requestsPerSec,
        p99Ms: bastion.latencyMs.p99,
        toSdkV1: ratio(bastion.requestsPerSec, sdk.requestsPerSec),
        toRaw: ratio(bastion.requestsPerSec, raw.requestsPerSec),
        p99ToSdkV1: ratio(bastion.latencyMs.p99, sdk.latencyMs.p99),
      };
    }),
  );
}

const cycle = (report, protocol) =>
  report.cycles.find((c) => c.protocol === protocol && c.server === 'defaults');
const read = (report, protocol, connections) =>
  report.throughput.find(
    (r) => r.protocol === protocol && r.connections === connections && r.scenario.startsWith('tools/call'),
  );
const converse = (report, protocol, connections) =>
  report.throughput.find(
    (r) => r.protocol === protocol && r.connections === connections && r.scenario.startsWith('converse'),
  );

/** Each target of the fast-door work: what it asks, the figure, and whether this run met it. */
export function targets(report) {
  const list = [];
  const add = (target, figure, met) => list.push({ target, figure, met });
  const sdk = row(report, 'sdk-v1', LEGACY);
  for (const protocol of [LEGACY, MODERN]) {
    const bastion = row(report, 'defaults', protocol);
    const x = ratio(bastion.requestsPerSec, sdk.requestsPerSec);
    add(`${protocol}: calls/s ≥ 2.0× the SDK v1 reference`, `${fmt(x)}×`, x >= 2);
    add(
      `${protocol}: p99 ≤ the SDK v1 reference's`,
      `${fmt(bastion.latencyMs.p99, 1)} ms vs ${fmt(sdk.latencyMs.p99, 1)} ms`,
      bastion.latencyMs.p99 <= sdk.latencyMs.p99,
    );
    const off = row(report, 'optional-off', protocol);
    const cost = 1 - bastion.requestsPerSec / off.requestsPerSec;
    add(
      `${protocol}: production defaults cost ≤ 15% against optional parts off`,
      `${fmt(cost * 100, 1)}%`,
      cost <= 0.15,
    );
  }
  const eras = ratio(
    row(report, 'defaults', MODERN).requestsPerSec,
    row(report, 'defaults', LEGACY).requestsPerSec,
  );
  add(`${MODERN} ≥ 0.9× ${LEGACY}`, `${fmt(eras)}×`, eras >= 0.9);
  const reference = report.cycles.find((c) => c.server === 'sdk-v1');
  for (const protocol of [LEGACY, MODERN]) {
    const x = ratio(cycle(report, protocol).cyclesPerSec, reference.cyclesPerSec);
    add(
      `${protocol}: connect cycles/s ≥ 2.0× the reference's initialize → call → DELETE`,
      `${fmt(x)}×`,
      x >= 2,
    );
  }
  const connections = Math.max(
    ...report.throughput.filter((r) => r.scenario.startsWith('converse')).map((r) => r.connections),
  );
  for (const protocol of [LEGACY, MODERN]) {
    const cost = ratio(
      read(report, protocol, connections)?.requestsPerSec,
      converse(report, protocol, connections)?.requestsPerSec,
    );
    add(
      `${protocol}: converse (rules) costs ≤ 3× a file read (${connections} connections)`,
      `${fmt(cost)}×`,
      cost !== null && cost <= 3,
    );
  }
  const cold = report.coldStart;
  add(
    '`bastion stdio` answers initialize within 1.5× the reference filesystem server',
    `${cold.stdio.bastionMs} ms vs ${cold.stdio.referenceMs} ms (${fmt(cold.stdio.ratio)}×)`,
    cold.stdio.ratio <= 1.5,
  );
  add(
    '`bastion serve` accepts connections within 1 s',
    `${cold.serve.bastionMs} ms`,
    cold.serve.bastionMs <= 1000,
  );
  const m = report.memory;
  add('idle RSS ≤ 120 MiB', `${fmt(m.rssIdleKiB / 1024, 1)} MiB`, m.rssIdleKiB <= 120 * 1024);
  if (m.rssAfterEachRoundKiB) {
    const growth = m.rssAfterEachRoundKiB.at(-1) / m.rssAfterEachRoundKiB[0] - 1;
    add(
      `RSS after ${m.rssAfterEachRoundKiB.length} rounds of ${m.clients} clients within 20% of the first round's`,
      `${growth >= 0 ? '+' : ''}${fmt(growth * 100, 1)}%`,
      growth <= 0.2,
    );
  }
  return list;
}
