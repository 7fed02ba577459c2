import { randomUUID } from 'node:crypto';
import { ConversationBusy } from './conversation.errors.js';
import type { TurnLockOptions } from './conversation.store.js';
import { TurnQueue } from './turn-queue.js';

/** How long a turn lock outlives a holder that stopped renewing it (a crashed process). */
export const DEFAULT_LEASE_MS = 30_000;
const RETRY_MIN_MS = 20;
const RETRY_MAX_MS = 100;

/** A store's lease on one conversation, held by the token that took it. */
export interface LeaseStorage {
  /** Takes the lease for token when it is free or expired; false when another holder has it. */
  take(id: string, token: string, leaseMs: number): Promise<boolean>;
  /** Extends token's lease; a no-op when token no longer holds it. */
  renew(id: string, token: string, leaseMs: number): Promise<void>;
  /** Gives token's lease back; a no-op when token no longer holds it. */
  release(id: string, token: string): Promise<void>;
}

/**
 * One turn per conversation at a time, across every process that shares the store: an in-process FIFO
 * first (so waiters in one process queue in order instead of all polling the store), then the store's
 * lease, renewed while the turn runs. A lease, not a fence: a holder stalled past the lease can lose it;
 * appendTurn numbers turns in one atomic write, so they stay whole and gapless even then.
 */
export class TurnLeases {
  private readonly queue = new TurnQueue();
  private readonly renewals = new Set<NodeJS.Timeout>();

  constructor(
    private readonly storage: LeaseStorage,
    private readonly leaseMs: number,
  ) {}

  run<T>(id: string, options: TurnLockOptions, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + options.waitMs;
    return this.queue.run(id, options, async () => {
      const token = randomUUID();
      await this.take(id, token, deadline, options.signal);
      const renewal = setInterval(() => {
        // A failed renewal is not fatal: the lease still runs, and the next tick tries again.
        this.storage.renew(id, token, this.leaseMs).catch(() => undefined);
      }, this.leaseMs / 3);
      this.renewals.add(renewal);
      try {
        return await fn();
      } finally {
        clearInterval(renewal);
        this.renewals.delete(renewal);
        // If the store is unreachable the lease expires on its own; fn's outcome matters more.
        await this.storage.release(id, token).catch(() => undefined);
      }
    });
  }

  /** Stops every renewal: the leases then run out on their own. */
  close(): void {
    for (const timer of this.renewals) clearInterval(timer);
    this.renewals.clear();
  }

  /** Retries with jittered backoff until the deadline (ConversationBusy) or the signal. */
  private async take(id: string, token: string, deadline: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if (await this.storage.take(id, token, this.leaseMs)) {
        if (!signal?.aborted) return;
        // Aborted while the take was in flight: give the lease straight back.
        await this.storage.release(id, token).catch(() => undefined);
        signal.throwIfAborted();
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new ConversationBusy();
      const jitter = RETRY_MIN_MS + Math.random() * (RETRY_MAX_MS - RETRY_MIN_MS);
      await delay(Math.min(left, jitter), signal);
    }
  }
}

/** Resolves after ms, or rejects with the signal's own reason once it aborts (so a cancellation stays typed). */
function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
