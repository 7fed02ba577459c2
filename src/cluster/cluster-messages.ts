import type { Registry } from 'prom-client';
import type { AuditEvent } from '../observability/audit-record.js';

/** Metrics as one worker reports them for aggregation (prom-client's JSON form). */
export type WorkerMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/**
 * What a worker and the primary say to each other over the cluster IPC channel. Every message carries a
 * `bastion:` type, so nothing else on the channel (prom-client's own, Node's internal) is taken for one.
 */
export type WorkerMessage =
  | { type: 'bastion:ready'; url: string }
  | { type: 'bastion:audit'; event: AuditEvent }
  | { type: 'bastion:audit-flush'; id: number }
  | { type: 'bastion:metrics-request'; id: number }
  | { type: 'bastion:metrics-collected'; id: number; metrics: WorkerMetrics };

export type PrimaryMessage =
  | { type: 'bastion:shutdown' }
  | { type: 'bastion:audit-flushed'; id: number }
  | { type: 'bastion:metrics-collect'; id: number }
  | { type: 'bastion:metrics-response'; id: number; text: string };

type Typed = { type: string };

function typed(message: unknown): message is Typed {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as Typed).type === 'string' &&
    (message as Typed).type.startsWith('bastion:')
  );
}

/** A message from a worker, or undefined for anything that is not one of Bastion's. */
export function workerMessage(message: unknown): WorkerMessage | undefined {
  return typed(message) ? (message as WorkerMessage) : undefined;
}

/** A message from the primary, or undefined for anything that is not one of Bastion's. */
export function primaryMessage(message: unknown): PrimaryMessage | undefined {
  return typed(message) ? (message as PrimaryMessage) : undefined;
}

/** Sends to the primary; false when the channel is gone (the primary exited). */
export function sendToPrimary(message: WorkerMessage): boolean {
  if (!process.send || !process.connected) return false;
  process.send(message);
  return true;
}
