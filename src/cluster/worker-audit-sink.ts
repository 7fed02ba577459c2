import type { AuditSink } from '../observability/audit-log.js';
import type { AuditEvent } from '../observability/audit-record.js';
import { primaryMessage, sendToPrimary } from './cluster-messages.js';

/** How long a flush waits for the primary's answer before giving up on it. */
const FLUSH_TIMEOUT_MS = 10_000;

/**
 * A cluster worker's audit sink: events go to the primary, which seals them into the one hash chain of
 * the configured file. A hash chain has one writer, and this keeps `bastion audit verify` and
 * `bastion backup` working on a single log. The IPC channel keeps each worker's events in order, and a
 * flush resolves once the primary has made everything sent before it durable.
 */
export class WorkerAuditSink implements AuditSink {
  private nextId = 1;
  private readonly waiting = new Map<number, () => void>();
  private closed = false;

  constructor() {
    process.on('message', (raw: unknown) => {
      const message = primaryMessage(raw);
      if (message?.type !== 'bastion:audit-flushed') return;
      this.waiting.get(message.id)?.();
    });
    // The primary is gone: nothing will answer, so nobody waits.
    process.on('disconnect', () => {
      for (const done of [...this.waiting.values()]) done();
    });
  }

  record(event: AuditEvent): void {
    if (this.closed) return;
    sendToPrimary({ type: 'bastion:audit', event });
  }

  flush(): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), FLUSH_TIMEOUT_MS);
      const done = (): void => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve();
      };
      this.waiting.set(id, done);
      if (!sendToPrimary({ type: 'bastion:audit-flush', id })) done();
    });
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }
}
