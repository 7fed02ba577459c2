import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthFailure, ScopeFailure } from '../auth/auth.errors.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import { accessOf, type RouteAccess } from '../auth/route-access.js';
import '../auth/request-principal.js';
import type { BastionConfig } from '../config/config.schema.js';
import type { Lifecycle } from '../health/lifecycle.js';
import type { AuditSink } from '../observability/audit-log.js';
import type { Metrics } from '../observability/metrics.js';
import { annotateRequest } from '../observability/request-log.js';
import type { InFlightLimiter } from '../rate-limit/in-flight-limiter.js';
import { RateLimited } from '../rate-limit/rate-limit.errors.js';
import { tierOf } from '../rate-limit/rate-limit.tiers.js';
import type { RateLimiter } from '../rate-limit/rate-limiter.js';
import { answerFor, sendAnswer, shapeOf } from './error-answer.js';
import { OriginPolicy } from './origin-policy.js';

/** Marks a request body that was not valid JSON: /mcp answers JSON-RPC -32700, other routes 400. */
export const MALFORMED_JSON = Symbol('malformed-json');

/** The largest body a request without credentials may carry (public routes take none). */
export const UNAUTHENTICATED_BODY_BYTES = 4 * 1024;

export interface GateParts {
  config: BastionConfig;
  authenticator: Authenticator;
  lifecycle: Lifecycle;
  audit: AuditSink;
  metrics: Metrics;
  /** The request limits; absent when rateLimit.enabled is off. */
  limiter?: RateLimiter;
  inFlight: InFlightLimiter;
  /** Records the calls a refused request asked for (a /mcp body), each as refused by the door. */
  refusedCalls?: (request: FastifyRequest, principal: Principal, code: string) => Promise<void>;
}

/**
 * The one gate at the HTTP edge, for every route, on the route the router matched (so every spelling of a
 * path gets the answer of the plain one). Before any body is read: drain, Host/Origin (DNS rebinding),
 * the per-IP limit, authentication and the route's scope, each refusal audited. After the body is parsed:
 * the per-principal limit and in-flight cap, counting every call of a batch.
 */
export function installGate(fastify: FastifyInstance, parts: GateParts): void {
  const gate = new HttpGate(parts);
  fastify.addHook('onRequest', (request, reply) => gate.beforeBody(request, reply));
  fastify.addHook('preHandler', (request, reply) => gate.afterBody(request, reply));
}

class HttpGate {
  private readonly origins: OriginPolicy;
  private readonly scrapeToken: Buffer | undefined;
  private readonly cors: boolean;

  constructor(private readonly parts: GateParts) {
    const { server, metrics } = parts.config;
    this.origins = new OriginPolicy(server);
    this.scrapeToken = metrics.token ? Buffer.from(metrics.token) : undefined;
    this.cors = server.allowedOrigins.length > 0;
  }

  async beforeBody(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const access = accessOf(request);
    const probe = access.kind === 'public' && !access.limited;
    annotateRequest(request.raw, { clientIp: request.ip });
    if (this.parts.lifecycle.state === 'draining' && !probe) {
      reply.header('connection', 'close').header('retry-after', '5');
      return sendAnswer(request, reply, {
        status: 503,
        code: 'shutting_down',
        message: 'Service unavailable: the server is shutting down.',
      });
    }
    // Health probes name the pod's address as Host; they answer up or down and nothing else.
    const verdict = this.origins.check(request.headers, { host: !probe });
    if (!verdict.ok) return this.refuse(request, reply, 403, 'forbidden', `Forbidden: ${verdict.reason}.`);
    try {
      if (!probe) await this.parts.limiter?.take('ip', request.ip, 1, this.parts.config.rateLimit.perIp);
      if (access.kind === 'public') return this.publicBody(request, reply);
      if (this.cors && isPreflight(request)) return undefined; // a preflight carries no credentials
      await this.admit(request, access);
    } catch (error) {
      if (error instanceof AuthFailure || error instanceof ScopeFailure) this.audit(error, request);
      if (!(error instanceof AuthFailure || error instanceof ScopeFailure || error instanceof RateLimited))
        throw error;
      closeIfBodyPending(request, reply);
      return sendAnswer(request, reply, answerFor(error));
    }
    return undefined;
  }

  async afterBody(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const { principal } = request;
    if (principal) {
      const units = callsIn(request.body);
      try {
        await this.limit(request, reply, principal, units);
      } catch (error) {
        if (!(error instanceof RateLimited)) throw error;
        await this.parts.refusedCalls?.(request, principal, 'rate_limited');
        return sendAnswer(request, reply, answerFor(error));
      }
    }
    const routed = request.routeOptions.url !== undefined;
    if (routed && request.body === MALFORMED_JSON && shapeOf(request) !== 'json-rpc')
      return this.refuse(request, reply, 400, 'invalid_json', 'Bad request: the body is not valid JSON.');
    return undefined;
  }

  /** Authenticates the caller as the route asks (metrics also take the scrape token) and checks its scope. */
  private async admit(request: FastifyRequest, access: RouteAccess): Promise<void> {
    const { authenticator } = this.parts;
    const { authorization } = request.headers;
    if (access.kind === 'metrics' && this.isScrapeToken(authorization)) return;
    const principal = await authenticator.authenticate(authorization);
    annotateRequest(request.raw, { principal: principal.id });
    const scope =
      access.kind === 'metrics' ? 'admin' : access.kind === 'principal' ? access.scope : undefined;
    if (scope) authenticator.requireScope(principal, scope);
    request.principal = principal;
  }

  /** The per-principal limit (and the per-IP one, for the calls past the first) and the in-flight cap. */
  private async limit(
    request: FastifyRequest,
    reply: FastifyReply,
    principal: Principal,
    units: number,
  ): Promise<void> {
    const { limiter, config, inFlight, metrics } = this.parts;
    if (limiter) {
      const tier = tierOf(config, principal);
      const quota = await limiter.take('principal', principal.id, units, tier.requests);
      if (units > 1) await limiter.take('ip', request.ip, units - 1, config.rateLimit.perIp);
      // Set on the raw response: /mcp answers it directly, bypassing the framework's reply.
      if (quota) {
        reply.raw.setHeader('x-ratelimit-limit-principal', String(quota.limit));
        reply.raw.setHeader('x-ratelimit-remaining-principal', String(quota.remaining));
        reply.raw.setHeader('x-ratelimit-reset-principal', String(quota.reset));
      }
    }
    try {
      const release = inFlight.enter(principal, units);
      reply.raw.once('close', release);
    } catch (error) {
      if (error instanceof RateLimited) metrics.rateLimited.inc({ limit: 'in_flight' });
      throw error;
    }
  }

  /**
   * A request without credentials is never waited on for its body: public routes take none, so a large
   * one is refused before it is read, a path no route serves is answered at once, and any other body ends
   * the connection with the answer instead of holding it open while the body trickles in.
   */
  private publicBody(request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
    const length = Number(request.headers['content-length'] ?? 0);
    const chunked = request.headers['transfer-encoding'] !== undefined;
    if (chunked || length > UNAUTHENTICATED_BODY_BYTES)
      return this.refuse(request, reply, 413, 'payload_too_large', 'Request body too large.');
    if (request.routeOptions.url === undefined && length > 0)
      return this.refuse(request, reply, 404, 'not_found', 'Not found.');
    closeIfBodyPending(request, reply);
    return undefined;
  }

  private refuse(
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    code: string,
    message: string,
  ): FastifyReply {
    closeIfBodyPending(request, reply);
    return sendAnswer(request, reply, { status, code, message });
  }

  private isScrapeToken(authorization: string | undefined): boolean {
    const token = this.scrapeToken;
    if (!token || !authorization?.startsWith('Bearer ')) return false;
    const offered = Buffer.from(authorization.slice('Bearer '.length).trim());
    return offered.length === token.length && timingSafeEqual(offered, token);
  }

  /** Every refused credential or scope is an audit record (who, if known, and why; never the credential). */
  private audit(error: AuthFailure | ScopeFailure, request: FastifyRequest): void {
    this.parts.audit.record({
      kind: 'auth_failure',
      actor: error instanceof ScopeFailure ? (error.principal ?? 'anonymous') : 'anonymous',
      action: error instanceof ScopeFailure ? 'authorize' : 'authenticate',
      target: request.routeOptions.url ?? '(unmatched)',
      outcome: 'denied',
      code: error.code,
      requestId: request.id,
    });
  }
}

/** The calls a body makes: each request of a JSON-RPC batch is one; anything else is one. */
function callsIn(body: unknown): number {
  if (!Array.isArray(body)) return 1;
  const requests = body.filter((m) => typeof m === 'object' && m !== null && 'method' in m && 'id' in m);
  return Math.max(1, requests.length);
}

function isPreflight(request: FastifyRequest): boolean {
  return request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
}

/** A refusal before the body is read ends the connection, so the body is never read at all. */
function closeIfBodyPending(request: FastifyRequest, reply: FastifyReply): void {
  const { headers } = request;
  const pending = Number(headers['content-length'] ?? 0) > 0 || headers['transfer-encoding'] !== undefined;
  if (pending && !request.raw.readableEnded) reply.header('connection', 'close');
}
