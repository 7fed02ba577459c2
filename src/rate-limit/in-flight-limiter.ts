import type { Principal } from '../auth/principal.js';
import { RateLimited } from './rate-limit.errors.js';

/**
 * Caps the requests one principal has in flight in this process (open notification streams count), so a
 * single client cannot hold every worker. Counts live only while requests do.
 */
export class InFlightLimiter {
  private readonly counts = new Map<string, number>();

  constructor(private readonly capOf: (principal: Principal) => number) {}

  /** Counts a request in; throws RateLimited at the cap. Call the returned function when it ends (once). */
  enter(principal: Principal): () => void {
    const { id } = principal;
    const count = this.counts.get(id) ?? 0;
    if (count >= this.capOf(principal)) throw new RateLimited('in_flight', 1);
    this.counts.set(id, count + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.counts.get(id) ?? 1) - 1;
      if (left === 0) this.counts.delete(id);
      else this.counts.set(id, left);
    };
  }

  inFlight(principal: Principal): number {
    return this.counts.get(principal.id) ?? 0;
  }
}
