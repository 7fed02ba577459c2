import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module.js';
import { Authenticator } from './auth/authenticator.js';
import { Lifecycle } from './health/lifecycle.js';
import type { BastionConfig } from './config/config.schema.js';
import { allowBrowserOrigins, securityHeaders } from './http/http-hardening.js';
import { HttpErrorFilter } from './http/http-error.filter.js';
import { installGate, MALFORMED_JSON } from './http/http-gate.js';
import { serveOpenApi } from './http/openapi.js';
import { isLoopback } from './http/origin-policy.js';
import { requestIdOf } from './http/request-id.js';
import { observeHttp } from './observability/http-observer.js';
import { frameworkLogger } from './observability/request-log.js';
import { McpHttpService } from './mcp/mcp-http.service.js';
import { serveMcp } from './mcp/mcp.route.js';
import { InFlightLimiter } from './rate-limit/in-flight-limiter.js';
import { rateLimiterFor } from './rate-limit/rate-limiter.js';
import { tierOf } from './rate-limit/rate-limit.tiers.js';
import type { Runtime } from './runtime.js';

export interface HttpServer {
  app: NestFastifyApplication;
  url: string;
  lifecycle: Lifecycle;
  /**
   * Drains, then closes: readiness turns false and new work gets 503, requests in flight get up to
   * `graceMs` to finish, then streams, the server and the watchers are closed. False when the grace
   * period ran out with work still in flight.
   */
  close(graceMs?: number): Promise<boolean>;
}

/** Refuses a bind that would expose an unauthenticated server beyond this machine. */
export function assertSafeBind(config: BastionConfig): void {
  if (config.auth.mode === 'none' && !isLoopback(config.server.host)) {
    throw new Error(
      `Refusing to listen on ${config.server.host}: no authentication is configured, so Bastion binds to ` +
        'loopback only (127.0.0.1, ::1 or localhost). Bind to loopback, or configure authentication first.',
    );
  }
}

export async function startHttpServer(runtime: Runtime): Promise<HttpServer> {
  const { config, logger } = runtime;
  assertSafeBind(config);
  const adapter = new FastifyAdapter({
    bodyLimit: config.server.bodyLimitBytes,
    requestTimeout: config.server.requestTimeoutMs,
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    http: { maxHeaderSize: config.server.maxHeaderBytes },
    requestIdHeader: false,
    genReqId: requestIdOf,
    trustProxy: proxyTrust(config.server.trustProxy),
    // Every spelling of a path reaches the route of its plain spelling, and so gets the same gate.
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, caseSensitive: false },
  });
  const authenticator = new Authenticator(config, runtime.keys);
  authenticator.onFailure(({ reason }) => runtime.metrics.authFailures.inc({ reason }));
  const lifecycle = new Lifecycle();
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRuntime({ runtime, authenticator, lifecycle }),
    adapter,
    {
      bodyParser: false,
      logger: false,
      // Start-up errors reach the caller (and its exit code 2 with a message) instead of exiting here.
      abortOnError: false,
    },
  );
  const fastify = app.getHttpAdapter().getInstance();
  observeHttp(fastify, runtime.metrics, runtime.tracing, logger);
  securityHeaders(fastify);
  const mcp = new McpHttpService(runtime);
  const limits = config.rateLimit;
  installGate(fastify, {
    config,
    authenticator,
    lifecycle,
    audit: runtime.audit,
    metrics: runtime.metrics,
    ...(limits.enabled && { limiter: rateLimiterFor(runtime) }),
    inFlight: new InFlightLimiter((principal) =>
      limits.enabled ? tierOf(config, principal).maxInFlight : Number.POSITIVE_INFINITY,
    ),
    refusedCalls: async (request, principal, code) => {
      if (request.routeOptions.url === '/mcp')
        await mcp.recordRefused(request.body, principal, request.id, code);
    },
  });
  allowBrowserOrigins(app, config);
  // Malformed JSON reaches the route marked: /mcp answers JSON-RPC -32700, the gate answers 400 elsewhere.
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(null, MALFORMED_JSON);
    }
  });
  serveMcp(fastify, { runtime, mcp, authenticator, lifecycle });
  app.useGlobalFilters(new HttpErrorFilter(logger));
  serveOpenApi(app, config);
  await app.listen(config.server.port, config.server.host);
  // After start-up, so the framework's own messages (errors) are JSON lines too, without its route table.
  app.useLogger(frameworkLogger(logger));
  const address = app.getHttpServer().address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/mcp`;
  authenticator.listeningAt(`http://${host}:${address.port}`, config.server.publicUrl);
  lifecycle.ready();
  return {
    app,
    url,
    lifecycle,
    async close(graceMs = config.server.shutdownGraceMs) {
      lifecycle.drain();
      const drained = await lifecycle.idle(graceMs);
      if (!drained)
        logger.warn({ inFlight: lifecycle.inFlight }, 'grace period over with requests in flight');
      await mcp.close();
      await app.close();
      runtime.surface.watcher.close();
      await runtime.close();
      return drained;
    },
  };
}

/** A hop count trusts that many proxies, nearest first (Fastify's own option takes no number here). */
function proxyTrust(
  trust: BastionConfig['server']['trustProxy'],
): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof trust === 'number' ? (_address, hop) => hop < trust : trust;
}
