import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';
import { logCompletion } from './request-log.js';
import type { HttpSpan, Tracing } from './tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's server span (a no-op when tracing is off). */
    span?: HttpSpan;
  }
}

type LabelledHistogram = ReturnType<Metrics['httpDuration']['labels']>;

const METHODS = new Set(['GET', 'POST', 'DELETE', 'OPTIONS', 'HEAD', 'PUT', 'PATCH']);

/** A route the router did not match: one label for every unknown path a client tries. */
export const UNMATCHED_ROUTE = '(unmatched)';

/**
 * Per request: the id echoed in `x-request-id`, a server span, the duration histogram by route template and
 * the one completion log line. All are settled when the raw response closes, so /mcp answers that bypass
 * the framework's reply are counted and logged too.
 */
export function observeHttp(
  fastify: FastifyInstance,
  metrics: Metrics,
  tracing: Tracing,
  logger: Logger,
): void {
  // One labelled child per (route, method, status), looked up by a plain key: label hashing per request
  // costs more than the observation.
  const durations = new Map<string, LabelledHistogram>();
  const durationOf = (route: string, method: string, status: number) => {
    const key = `${route} ${method} ${status}`;
    let child = durations.get(key);
    if (!child) {
      child = metrics.httpDuration.labels({ route, method, status: String(status) });
      durations.set(key, child);
    }
    return child;
  };
  fastify.addHook('onRequest', (request, reply, done) => {
    const started = performance.now();
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const method = METHODS.has(request.method) ? request.method : 'other';
    reply.raw.setHeader('x-request-id', request.id);
    const span = tracing.startHttpSpan(method, route, request.headers);
    request.span = span;
    reply.raw.once('close', () => {
      const status = reply.raw.statusCode;
      durationOf(route, method, status).observe((performance.now() - started) / 1000);
      span.end(status);
      logCompletion(logger, request, reply, started);
    });
    done();
  });
}
