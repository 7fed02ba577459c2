import type { Metrics } from './metrics.js';

/**
 * Metrics nobody reads (stdio has no /metrics): every series takes its updates and keeps nothing, and
 * prom-client is never loaded. Any member is a function returning the same nothing, so `labels(...)`,
 * `inc()` and `observe()` chain as on the real series; it is not a promise (`then` is absent).
 */
export function discardedMetrics(): Metrics {
  const nothing: unknown = new Proxy(() => nothing, {
    get: (_target, key) => (key === 'then' ? undefined : nothing),
    apply: () => nothing,
  });
  return nothing as Metrics;
}
