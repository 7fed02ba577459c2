import { BastionError } from '../common/bastion-error.js';

/** Which limit refused a request: a metrics label. */
export type RateLimit = 'ip' | 'principal' | 'in_flight';

/** 429: a limit was reached; `retryAfterSec` goes out as Retry-After. */
export class RateLimited extends BastionError {
  constructor(
    readonly limit: RateLimit,
    readonly retryAfterSec: number,
  ) {
    super('rate_limited', `Too many requests${DETAIL[limit]}. Retry after ${retryAfterSec} s.`);
  }
}

const DETAIL: Record<RateLimit, string> = {
  ip: ' from this address',
  principal: ' for this client',
  in_flight: ': this client has too many requests in flight',
};
