import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { BastionConfig } from '../config/config.schema.js';
import type { AuditSink } from '../observability/audit-log.js';
import { workerMessage, type PrimaryMessage, type WorkerMessage } from './cluster-messages.js';
import { MetricsAggregator } from './cluster-metrics.js';

/** The first restart waits this long; each failure in a row doubles it, up to RESTART_MAX_MS. */
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 30_000;
/** A worker that served this long before dying starts its slot's backoff afresh. */
const STABLE_MS = 60_000;
/** Workers of one slot that die before serving, in a row, before the primary gives up. */
const MAX_START_FAILURES = 5;

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** The one audit chain: workers send their events here. */
  audit: AuditSink;
  /** Called once every worker serves for the first time, with the URL they announced. */
  onServing(url: string): void;
}

/** What the process exits with. */
export type PrimaryOutcome = Promise<number>;

interface Slot {
  index: number;
  worker?: Worker;
  startedAt: number;
  serving: boolean;
  /** Deaths in a row that counted toward the backoff. */
  failures: number;
  /** Deaths in a row before serving. */
  startFailures: number;
  restart?: NodeJS.Timeout;
}

/**
 * The `bastion serve --workers N` primary: forks N workers that share the listening socket, restarts a
 * worker that dies with capped exponential backoff, writes the audit chain for all of them, aggregates
 * /metrics, and on shutdown() asks each to drain. Resolves with the exit code once every worker is gone.
 */
export class ClusterPrimary {
  private readonly slots: Slot[];
  private readonly metrics = new MetricsAggregator();
  private stopping = false;
  private everServing = false;
  private failed = false;
  private url = '';
  private finish!: (code: number) => void;
  readonly done: PrimaryOutcome = new Promise<number>((resolve) => (this.finish = resolve));

  constructor(private readonly options: PrimaryOptions) {
    this.slots = Array.from({ length: options.workers }, (_, index) => ({
      index,
      startedAt: 0,
      serving: false,
      failures: 0,
      startFailures: 0,
    }));
    cluster.on('message', (worker, raw) => this.onMessage(worker, raw));
  }

  start(): void {
    for (const slot of this.slots) this.fork(slot);
  }

  /** Asks every worker to drain; a worker still running after graceMs is killed. Idempotent. */
  shutdown(graceMs: number): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const slot of this.slots) clearTimeout(slot.restart);
    for (const worker of this.live()) this.send(worker, { type: 'bastion:shutdown' });
    // The workers' drains have their own deadline; this is the backstop if one hangs.
    setTimeout(() => {
      for (const worker of this.live()) {
        this.options.logger.warn({ pid: worker.process.pid }, 'worker did not stop in time: killing it');
        worker.process.kill('SIGKILL');
      }
    }, graceMs + 5_000).unref();
    this.settleIfIdle();
  }

  /** Stops at once (a second signal): kills every worker. */
  kill(): void {
    this.stopping = true;
    for (const worker of this.live()) worker.process.kill('SIGKILL');
  }

  private fork(slot: Slot): void {
    slot.restart = undefined;
    slot.serving = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork();
    slot.worker = worker;
    worker.on('exit', (code, signal) => this.onExit(slot, worker, code, signal));
  }

  private onMessage(worker: Worker, raw: unknown): void {
    const message: WorkerMessage | undefined = workerMessage(raw);
    if (!message) return;
    switch (message.type) {
      case 'bastion:ready':
        return this.onServing(worker, message.url);
      case 'bastion:audit':
        return this.options.audit.record(message.event);
      case 'bastion:audit-flush':
        void this.options.audit.flush().then(
          () => this.send(worker, { type: 'bastion:audit-flushed', id: message.id }),
          (error: unknown) => this.options.logger.error({ err: error }, 'audit flush failed'),
        );
        return;
      case 'bastion:metrics-request':
        void this.metrics
          .collect(this.live())
          .then((text) => this.send(worker, { type: 'bastion:metrics-response', id: message.id, text }));
        return;
      case 'bastion:metrics-collected':
        return this.metrics.collected(message.id, message.metrics);
    }
  }

  private onServing(worker: Worker, url: string): void {
    const slot = this.slots.find((candidate) => candidate.worker === worker);
    if (!slot) return;
    slot.serving = true;
    slot.startFailures = 0;
    this.url = url;
    // Forked just before shutdown began: it could not hear the request while starting, so ask again.
    if (this.stopping) return this.send(worker, { type: 'bastion:shutdown' });
    this.options.logger.info({ worker: slot.index + 1, pid: worker.process.pid }, 'worker serving');
    if (!this.everServing && this.slots.every((candidate) => candidate.serving)) {
      this.everServing = true;
      this.options.onServing(this.url);
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker === worker) slot.worker = undefined;
    const { logger } = this.options;
    const fields = { worker: slot.index + 1, pid: worker.process.pid, code, signal };
    if (this.stopping) {
      if (code !== 0) this.failed = true;
      logger.info(fields, 'worker stopped');
      return this.settleIfIdle();
    }
    if (!this.everServing) {
      // Start-up failed (the worker printed why): the same outcome as a single process, exit 2.
      logger.error(fields, 'worker failed to start');
      process.stderr.write(`bastion: a worker failed to start (exit code ${code ?? signal}); stopping.\n`);
      return this.giveUp(2);
    }
    const lived = Date.now() - slot.startedAt;
    slot.failures = lived >= STABLE_MS ? 1 : slot.failures + 1;
    slot.startFailures = slot.serving ? 0 : slot.startFailures + 1;
    if (slot.startFailures >= MAX_START_FAILURES) {
      logger.error({ ...fields, attempts: slot.startFailures }, 'worker keeps failing at start: giving up');
      process.stderr.write(
        `bastion: a worker failed to start ${slot.startFailures} times in a row; stopping.\n`,
      );
      return this.giveUp(1);
    }
    const delayMs = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (slot.failures - 1));
    logger.error({ ...fields, restartInMs: delayMs }, 'worker died: restarting it');
    slot.restart = setTimeout(() => this.fork(slot), delayMs);
  }

  /** Stops the others and exits with `code` once they are gone. */
  private giveUp(code: number): void {
    this.failed = true;
    this.exitCode = code;
    this.shutdown(0);
  }

  private exitCode: number | undefined;

  private settleIfIdle(): void {
    if (!this.stopping || this.live().length > 0) return;
    this.finish(this.exitCode ?? (this.failed ? 1 : 0));
  }

  private live(): Worker[] {
    return this.slots.flatMap((slot) => (slot.worker && !slot.worker.isDead() ? [slot.worker] : []));
  }

  private send(worker: Worker, message: PrimaryMessage): void {
    if (worker.isConnected()) worker.send(message);
  }
}

/** `server.workers` as a count: `auto` is one per CPU the process may use. */
export function workerCount(workers: BastionConfig['server']['workers'], cpus: number): number {
  return workers === 'auto' ? Math.max(1, cpus) : workers;
}

/**
 * Refuses settings that several workers would quietly change: in-memory rate-limit counters are per
 * process, so N workers would allow N times each configured limit.
 */
export function assertClusterSafe(config: BastionConfig, workers: number): void {
  if (workers > 1 && config.rateLimit.enabled && config.rateLimit.storage === 'memory') {
    throw new Error(
      `Refusing to start ${workers} workers with rateLimit.storage=memory: each worker would count on its ` +
        'own, allowing each limit once per worker. Set BASTION_RATE_LIMIT_STORAGE=redis (with ' +
        'BASTION_REDIS_URL), or run one worker.',
    );
  }
}
