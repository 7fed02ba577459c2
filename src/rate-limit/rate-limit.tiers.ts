import type { Principal } from '../auth/principal.js';
import type { BastionConfig } from '../config/config.schema.js';
import { own } from '../common/own.js';

export interface Tier {
  requests: number;
  maxInFlight: number;
}

/** The limits of a principal's tier; a tier the config does not name falls back to `default`. */
export function tierOf(config: BastionConfig, principal: Principal): Tier {
  const { tiers } = config.rateLimit;
  return (own(tiers, principal.tier) ?? tiers.default) as Tier;
}
