import { setTimeout as sleep } from 'node:timers/promises';

export type LifecycleState = 'starting' | 'ready' | 'draining';

/**
 * Where the server is in its life, and how much work it is doing. Readiness is true only while `ready`;
 * a drain refuses new work and waits for the requests in flight (long-lived notification streams are not
 * work: they are closed once the work is done).
 */
export class Lifecycle {
  private current: LifecycleState = 'starting';
  private active = 0;

  get state(): LifecycleState {
    return this.current;
  }

  get inFlight(): number {
    return this.active;
  }

  ready(): void {
    if (this.current === 'starting') this.current = 'ready';
  }

  drain(): void {
    this.current = 'draining';
  }

  /** Counts one request as in flight until the returned function is called (once). */
  begin(): () => void {
    this.active++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.active--;
    };
  }

  /** Resolves true once nothing is in flight, false when the deadline comes first. */
  async idle(deadlineMs: number): Promise<boolean> {
    const until = Date.now() + deadlineMs;
    while (this.active > 0) {
      if (Date.now() >= until) return false;
      await sleep(Math.min(25, until - Date.now()));
    }
    return true;
  }
}
