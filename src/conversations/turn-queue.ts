import { ConversationBusy } from './conversation.errors.js';
import type { TurnLockOptions } from './conversation.store.js';

/** Gives the turn back to the next waiter; calling it more than once is harmless. */
export type ReleaseTurn = () => void;

/**
 * An in-process FIFO mutex per key: each holder's release settles the promise the next waiter awaits.
 * A key's entry is dropped as soon as nobody holds or awaits it, so memory follows the conversations in
 * use, not every conversation ever seen.
 */
export class TurnQueue {
  /** Per key, the promise the next arrival must await: settled when the last in line releases. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Keys currently held or awaited (for tests and metrics). */
  get size(): number {
    return this.tails.size;
  }

  /** Runs fn once it is the key's turn; the turn passes on when fn settles. */
  async run<T>(key: string, options: TurnLockOptions, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(key, options);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /**
   * Waits for the key's turn, in arrival order. Rejects with ConversationBusy after options.waitMs, or with
   * the signal's reason once it aborts; a waiter that gives up still passes the turn on when its own turn
   * comes, so the line behind it is never stuck.
   */
  acquire(key: string, { waitMs, signal }: TurnLockOptions): Promise<ReleaseTurn> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const previous = this.tails.get(key);
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.tails.set(key, done);
    const release: ReleaseTurn = () => {
      settle();
      if (this.tails.get(key) === done) this.tails.delete(key);
    };
    if (!previous) return Promise.resolve(release);

    return new Promise<ReleaseTurn>((resolve, reject) => {
      let waiting = true;
      const stop = () => {
        waiting = false;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const giveUp = (reason: unknown) => {
        if (!waiting) return;
        stop();
        void previous.then(release);
        reject(reason);
      };
      const onAbort = () => giveUp(signal?.reason);
      const timer = setTimeout(() => giveUp(new ConversationBusy()), Math.max(0, waitMs));
      signal?.addEventListener('abort', onAbort, { once: true });
      void previous.then(() => {
        if (!waiting) return;
        stop();
        resolve(release);
      });
    });
  }
}
