import { All, Controller, Inject, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { principalOf } from '../auth/auth.guard.js';
import { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import { Lifecycle } from '../health/lifecycle.js';
import { RUNTIME, type Runtime } from '../runtime.js';
import { McpHttpService } from './mcp-http.service.js';

/** POST (and GET/DELETE, answered per revision by the SDK) on /mcp, for the principal the guard established. */
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
    this.challengeScope(principal, request.body);
    const sandbox = await this.runtime.sandboxes.for(principal);
    reply.hijack();
    if (isWork(request)) reply.raw.once('close', this.lifecycle.begin());
    await this.mcp.handle(request.raw, reply.raw, request.body, { principal, sandbox });
  }

  /**
   * An OAuth client calling a tool outside its token's scopes gets 403 insufficient_scope, naming the scope,
   * so it can ask the authorization server for more (MCP authorization, scope challenge). Other principals
   * cannot step up, so they get the tool's own refusal instead.
   */
  private challengeScope(principal: Principal, body: unknown): void {
    if (principal.kind !== 'oauth') return;
    const message = body as { method?: unknown; params?: { name?: unknown } } | undefined;
    if (message?.method !== 'tools/call' || typeof message.params?.name !== 'string') return;
    const scope = this.runtime.surface.registry.scopeOf(message.params.name);
    if (scope) this.auth.requireScope(principal, scope);
  }
}

/** A request a drain waits for; notification streams (GET, subscriptions/listen) are closed instead. */
function isWork(request: FastifyRequest): boolean {
  if (request.method !== 'POST') return false;
  return (request.body as { method?: unknown } | undefined)?.method !== 'subscriptions/listen';
}
