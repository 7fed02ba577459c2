import { All, Controller, Inject, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { principalOf } from '../auth/request-principal.js';
import { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import { Lifecycle } from '../health/lifecycle.js';
import { annotateRequest } from '../observability/request-log.js';
import { RUNTIME, type Runtime } from '../runtime.js';
import { doorRequestsOf } from './door-requests.js';
import { McpHttpService } from './mcp-http.service.js';
import { describeMcpRequest, type McpRequestLabels } from './mcp-request-labels.js';

/** POST (and GET/DELETE, answered per revision by the SDK) on /mcp, for the principal the guard established. */
@ApiExcludeController()
@Controller('mcp')
export class McpController {
  constructor(
    @Inject(McpHttpService) private readonly mcp: McpHttpService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(Authenticator) private readonly auth: Authenticator,
    @Inject(Lifecycle) private readonly lifecycle: Lifecycle,
  ) {}

  @All()
  async handle(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const principal = principalOf(request);
    const labels = describeMcpRequest(request, this.runtime.surface.registry);
    annotateRequest(request.raw, {
      mcpMethod: labels.method,
      ...(labels.tool !== undefined && { tool: labels.tool }),
    });
    this.challengeScope(principal, request.body);
    const sandbox = await this.runtime.sandboxes.for(principal);
    const { raw } = reply;
    this.track(request, raw, labels);
    // The answer is written to the raw response: carry over headers set so far (CORS, rate limits).
    for (const [name, value] of Object.entries(reply.getHeaders()))
      if (value !== undefined) raw.setHeader(name, value as string);
    raw.setHeader('x-accel-buffering', 'no'); // proxies must not hold back SSE events
    reply.hijack();
    const caller = { principal, sandbox, requestId: request.id };
    const serve = () => this.mcp.handle(request.raw, raw, request.body, caller);
    const span = request.span;
    await (this.runtime.tracing.enabled && span
      ? span.run(() =>
          this.runtime.tracing.inSpan(`mcp ${labels.method}`, { 'rpc.method': labels.method }, serve),
        )
      : serve());
  }

  /** In-flight counts and the MCP request series, settled when the response closes. */
  private track(request: FastifyRequest, raw: FastifyReply['raw'], labels: McpRequestLabels): void {
    const { metrics } = this.runtime;
    const endWork = isWork(request) ? this.lifecycle.begin() : undefined;
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
  private challengeScope(principal: Principal, body: unknown): void {
    if (principal.kind !== 'oauth' || Array.isArray(body)) return;
    const { registry } = this.runtime.surface;
    for (const request of doorRequestsOf(body)) {
      const scope = registry.refusingScope(principal, request);
      if (scope) this.auth.requireScope(principal, scope);
    }
  }
}

/** A request a drain waits for; notification streams (GET, subscriptions/listen) are closed instead. */
function isWork(request: FastifyRequest): boolean {
  if (request.method !== 'POST') return false;
  return (request.body as { method?: unknown } | undefined)?.method !== 'subscriptions/listen';
}
