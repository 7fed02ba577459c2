import type { Principal } from '../auth/principal.js';
import { RateLimited } from './rate-limit.errors.js';

/**
 * Caps the calls one principal has in flight in this process (open notification streams count, and each
 * call of a batch), so a single client cannot hold every worker. Counts live only while requests do.
 */
export class InFlightLimiter {
  private readonly counts = new Map<string, number>();

  constructor(private readonly capOf: (principal: Principal) => number) {}

  /**
   * Counts `units` calls in; throws RateLimited when they would pass the cap. Call the returned function
   * when they end (once).
   */
  enter(principal: Principal, units = 1): () => void {
    const { id } = principal;
    const count = this.counts.get(id) ?? 0;
    if (count + units > this.capOf(principal)) throw new RateLimited('in_flight', 1);
    this.counts.set(id, count + units);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.counts.get(id) ?? units) - units;
      if (left <= 0) this.counts.delete(id);
      else this.counts.set(id, left);
    };
  }

  inFlight(principal: Principal): number {
    return this.counts.get(principal.id) ?? 0;
  }
}
