import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import { principalOf } from '../auth/request-principal.js';
import type { Lifecycle } from '../health/lifecycle.js';
import { answerFor, sendAnswer } from '../http/error-answer.js';
import { annotateRequest } from '../observability/request-log.js';
import type { Runtime } from '../runtime.js';
import { doorRequestsOf } from './door-requests.js';
import type { McpHttpService } from './mcp-http.service.js';
import { describeMcpRequest, type McpRequestLabels } from './mcp-request-labels.js';

export interface McpRouteParts {
  runtime: Runtime;
  mcp: McpHttpService;
  authenticator: Authenticator;
  lifecycle: Lifecycle;
}

/**
 * /mcp as a plain Fastify route (POST, and GET/DELETE, answered per revision): the gate has authenticated
 * and limited the request before it gets here, on this matched route; this labels it for logs and metrics,
 * challenges an OAuth client for a missing scope, and hands it to the MCP service, which answers on the
 * raw response. No framework pipeline runs per call.
 */
export function serveMcp(fastify: FastifyInstance, parts: McpRouteParts): void {
  fastify.route({
    method: ['GET', 'POST', 'DELETE'],
    url: '/mcp',
    handler: (request, reply) => handle(request, reply, parts),
  });
}

async function handle(request: FastifyRequest, reply: FastifyReply, parts: McpRouteParts): Promise<void> {
  const { runtime, mcp } = parts;
  const principal = principalOf(request);
  const labels = describeMcpRequest(request, runtime.surface.registry);
  annotateRequest(request.raw, {
    mcpMethod: labels.method,
    ...(labels.tool !== undefined && { tool: labels.tool }),
  });
  let sandbox;
  try {
    challengeScope(parts, principal, request.body);
    sandbox = await runtime.sandboxes.for(principal);
  } catch (error) {
    return void sendAnswer(request, reply, answerFor(error));
  }
  const { raw } = reply;
  track(parts, request, raw, labels);
  // The answer is written to the raw response: carry over headers set so far (CORS, rate limits).
  for (const [name, value] of Object.entries(reply.getHeaders()))
    if (value !== undefined) raw.setHeader(name, value as string);
  raw.setHeader('x-accel-buffering', 'no'); // proxies must not hold back SSE events
  reply.hijack();
  const caller = { principal, sandbox, requestId: request.id };
  const serve = () => mcp.handle(request.raw, raw, request.body, caller);
  const span = request.span;
  await (runtime.tracing.enabled && span
    ? span.run(() => runtime.tracing.inSpan(`mcp ${labels.method}`, { 'rpc.method': labels.method }, serve))
    : serve());
}

/** In-flight counts and the MCP request series, settled when the response closes. */
function track(
  { runtime, lifecycle }: McpRouteParts,
  request: FastifyRequest,
  raw: FastifyReply['raw'],
  labels: McpRequestLabels,
): void {
  const { metrics } = runtime;
  const endWork = isWork(request) ? lifecycle.begin() : undefined;
  metrics.inFlight.inc();
  raw.once('close', () => {
    endWork?.();
    metrics.inFlight.dec();
    const outcome = raw.statusCode < 400 ? 'ok' : 'error';
    metrics.mcpRequests.inc({ method: labels.method, revision: labels.revision, outcome });
  });
}

/**
 * An OAuth client calling a tool, prompt or resource outside its token's scopes gets 403
 * insufficient_scope, naming the scope, so it can ask the authorization server for more (MCP
 * authorization, scope challenge). Other principals cannot step up, so they get the door's own refusal.
 */
function challengeScope(
  { runtime, authenticator }: McpRouteParts,
  principal: Principal,
  body: unknown,
): void {
  if (principal.kind !== 'oauth' || Array.isArray(body)) return;
  const { registry } = runtime.surface;
  for (const request of doorRequestsOf(body)) {
    const scope = registry.refusingScope(principal, request);
    if (scope) authenticator.requireScope(principal, scope);
  }
}

/** A request a drain waits for; notification streams (GET, subscriptions/listen) are closed instead. */
function isWork(request: FastifyRequest): boolean {
  if (request.method !== 'POST') return false;
  return (request.body as { method?: unknown } | undefined)?.method !== 'subscriptions/listen';
}
