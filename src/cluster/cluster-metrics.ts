import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, register } from 'prom-client';
import { METRIC_PREFIX } from '../observability/metrics.js';
import { primaryMessage, sendToPrimary, type WorkerMetrics } from './cluster-messages.js';

/** How long the primary waits for every worker's series, and a worker for the primary's answer. */
const COLLECT_TIMEOUT_MS = 5_000;

/** Readiness is the answering worker's own, never a sum over the group. */
const READY = `${METRIC_PREFIX}ready`;

/** Whether /metrics should answer for the whole process group (this process is a cluster worker). */
export function inCluster(): boolean {
  return cluster.isWorker && typeof process.send === 'function';
}

/**
 * A worker's side: answers the primary's collection requests with this process's series, and asks the
 * primary for the group's. Call once per worker process.
 */
export function answerMetricsCollection(): void {
  process.on('message', (raw: unknown) => {
    const message = primaryMessage(raw);
    if (message?.type !== 'bastion:metrics-collect') return;
    void register.getMetricsAsJSON().then((metrics) =>
      sendToPrimary({
        type: 'bastion:metrics-collected',
        id: message.id,
        metrics: metrics.filter((metric) => metric.name !== READY),
      }),
    );
  });
}

let nextRequest = 1;

/**
 * The exposition of every worker's series aggregated by the primary (counters and histograms summed),
 * followed by this worker's own `bastion_ready`.
 */
export async function groupMetrics(): Promise<string> {
  const id = nextRequest++;
  const text = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => finish(new Error('The primary did not answer for metrics.')),
      COLLECT_TIMEOUT_MS,
    );
    const onMessage = (raw: unknown): void => {
      const message = primaryMessage(raw);
      if (message?.type === 'bastion:metrics-response' && message.id === id) finish(message.text);
    };
    const finish = (result: string | Error): void => {
      clearTimeout(timer);
      process.off('message', onMessage);
      if (typeof result === 'string') resolve(result);
      else reject(result);
    };
    process.on('message', onMessage);
    if (!sendToPrimary({ type: 'bastion:metrics-request', id })) finish(new Error('The primary is gone.'));
  });
  return `${text}${await register.getSingleMetricAsString(READY)}\n`;
}

/** The primary's side: collects every live worker's series and aggregates them. */
export class MetricsAggregator {
  private nextId = 1;
  private readonly pending = new Map<number, { expected: number; got: WorkerMetrics[]; done: () => void }>();

  /** Records a worker's answer to a collection request. */
  collected(id: number, metrics: WorkerMetrics): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    entry.got.push(metrics);
    if (entry.got.length >= entry.expected) entry.done();
  }

  /** The group's exposition text, from the workers that answered within the timeout. */
  async collect(workers: Worker[]): Promise<string> {
    const id = this.nextId++;
    const got: WorkerMetrics[] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), COLLECT_TIMEOUT_MS);
      const done = (): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve();
      };
      const live = workers.filter((worker) => worker.isConnected());
      if (live.length === 0) return done();
      this.pending.set(id, { expected: live.length, got, done });
      for (const worker of live) worker.send({ type: 'bastion:metrics-collect', id });
    });
    return AggregatorRegistry.aggregate(got).metrics();
  }
}
