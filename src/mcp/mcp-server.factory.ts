import { Server, type ServerContext } from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { ToolContext } from '../tools/tool.js';
import type { ToolRegistry } from '../tools/tool-registry.js';
import type { FileWatcher } from '../workspace/file-watcher.js';
import type { Sandbox } from '../workspace/sandbox.js';
import {
  cacheHints,
  SERVER_INFO,
  SERVER_INSTRUCTIONS,
  serverCapabilities,
  type ResourceUpdates,
} from './server-info.js';
import { protocolError, type MethodHandler, type Params, type WorkspaceMethod } from './mcp-methods.js';
import { serveResourceSubscriptions } from './resource-subscriptions.js';

/** Who a server instance serves: one HTTP request, or one stdio connection. */
export interface ServingContext {
  principal: Principal;
  sandbox: Sandbox;
  logger: Logger;
  /** Correlates logs with the transport's request (the HTTP x-request-id). */
  requestId?: string;
}

export interface McpSurface {
  /** The door, with everything a workspace serves registered: tools, prompts, templates, operations. */
  registry: ToolRegistry;
  /** The MCP methods translated into door calls, built once from the registry. */
  methods: Record<WorkspaceMethod, MethodHandler>;
  /** The watches behind resource subscriptions (closed with the transports). */
  watcher: FileWatcher;
  /** Tools come and go at run time (upstreams are configured): servers that can tell clients say so. */
  dynamicTools: boolean;
}

/**
 * Builds the SDK's protocol server for one serving unit (a stdio connection, or an HTTP exchange the SDK
 * answers). Its handlers are the workspace methods built once with the surface: this only wires them.
 */
export function createMcpServer(
  surface: McpSurface,
  serving: ServingContext,
  updates: ResourceUpdates = 'none',
): Server {
  const server = new Server(SERVER_INFO, {
    capabilities: serverCapabilities(updates, surface.dynamicTools),
    instructions: SERVER_INSTRUCTIONS,
    cacheHints: cacheHints(surface.dynamicTools),
  });
  const context = (ctx: ServerContext, progressToken?: string | number) =>
    toolContext(serving, ctx, progressToken, server.getClientVersion()?.name);
  for (const [method, handler] of Object.entries(surface.methods)) {
    server.setRequestHandler(method as WorkspaceMethod, (request, ctx) => {
      const params = (request.params ?? {}) as Params;
      const meta = params._meta as { progressToken?: string | number } | undefined;
      return handler(params, context(ctx, meta?.progressToken)) as never;
    });
  }
  server.setRequestHandler('logging/setLevel', () => ({}));
  if (updates === 'subscribe')
    serveResourceSubscriptions(server, (uri, ctx, resourceUpdated) =>
      surface.registry
        .perform<{ stop(): void }>('resources/subscribe', { uri }, { ...context(ctx), resourceUpdated })
        .catch((error: unknown) => {
          throw protocolError(error, uri);
        }),
    );
  return server;
}

function toolContext(
  serving: ServingContext,
  ctx: ServerContext,
  progressToken: string | number | undefined,
  client: string | undefined,
): ToolContext {
  const requestId = serving.requestId ?? String(ctx.mcpReq.id);
  const toolCtx: ToolContext = {
    principal: serving.principal,
    sandbox: serving.sandbox,
    signal: ctx.mcpReq.signal,
    logger: serving.logger,
    requestId,
    // Known on a connection that initialized (stdio) and on 2026-07-28 requests, which carry it each time.
    ...(client !== undefined && { client }),
  };
  if (progressToken !== undefined) {
    toolCtx.progress = (update) =>
      ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, ...update } });
  }
  return toolCtx;
}
