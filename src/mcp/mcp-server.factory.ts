import { ProtocolError, ProtocolErrorCode, Server, type ServerContext } from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { ToolContext } from '../tools/tool.js';
import type { ToolRegistry } from '../tools/tool-registry.js';
import { InvalidToolCall } from '../tools/tool.errors.js';
import type { Sandbox } from '../workspace/sandbox.js';
import { SERVER_INFO, SERVER_INSTRUCTIONS, serverCapabilities, type ResourceUpdates } from './server-info.js';
import type { WorkspaceResources } from '../workspace/workspace.resources.js';
import type { WorkspacePrompts } from '../workspace/workspace.prompts.js';
import type { FileWatcher } from '../workspace/file-watcher.js';
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
  registry: ToolRegistry;
  resources: WorkspaceResources;
  prompts: WorkspacePrompts;
  watcher: FileWatcher;
  /** Tools come and go at run time (upstreams are configured): servers that can tell clients say so. */
  dynamicTools: boolean;
}

// Lists differ by principal, so they may be cached by the requesting client only (2026-07-28 caching hints).
// With upstreams, the tool list follows their health: kept briefly, like the resource list.
const cacheHints = (toolsTtlMs: number) =>
  ({
    'tools/list': { ttlMs: toolsTtlMs, cacheScope: 'private' },
    'prompts/list': { ttlMs: 60_000, cacheScope: 'private' },
    'resources/templates/list': { ttlMs: 60_000, cacheScope: 'private' },
    'resources/list': { ttlMs: 5_000, cacheScope: 'private' },
    'resources/read': { ttlMs: 0, cacheScope: 'private' },
    'server/discover': { ttlMs: 60_000, cacheScope: 'private' },
  }) as const;
const STATIC_TOOLS_HINTS = cacheHints(60_000);
const DYNAMIC_TOOLS_HINTS = cacheHints(5_000);

/**
 * Builds the SDK's protocol server for one serving unit. Everything heavy (schemas, descriptors) was built
 * once at start; this only wires handlers to the registry, so it is cheap enough to run per request.
 */
export function createMcpServer(
  surface: McpSurface,
  serving: ServingContext,
  updates: ResourceUpdates = 'none',
): Server {
  const server = new Server(SERVER_INFO, {
    capabilities: serverCapabilities(updates, surface.dynamicTools),
    instructions: SERVER_INSTRUCTIONS,
    cacheHints: surface.dynamicTools ? DYNAMIC_TOOLS_HINTS : STATIC_TOOLS_HINTS,
  });
  const { registry, resources, prompts } = surface;

  server.setRequestHandler('tools/list', () => ({ tools: registry.list(serving.principal) }) as never);
  server.setRequestHandler('tools/call', async (request, ctx) => {
    try {
      return (await registry.invoke(
        request.params.name,
        request.params.arguments,
        toolContext(serving, ctx, request.params._meta?.progressToken, server.getClientVersion()?.name),
      )) as never;
    } catch (error) {
      if (error instanceof InvalidToolCall)
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, error.message);
      throw error;
    }
  });

  server.setRequestHandler('resources/list', (request, ctx) =>
    resources.list(serving, request.params?.cursor, ctx.mcpReq.signal),
  );
  server.setRequestHandler('resources/templates/list', () => resources.templates());
  server.setRequestHandler(
    'resources/read',
    (request) => resources.read(serving, request.params.uri) as never,
  );
  server.setRequestHandler('prompts/list', () => prompts.list());
  server.setRequestHandler(
    'prompts/get',
    (request) => prompts.get(serving, request.params.name, request.params.arguments ?? {}) as never,
  );
  server.setRequestHandler(
    'completion/complete',
    (request, ctx) => prompts.complete(serving, request.params, ctx.mcpReq.signal) as never,
  );
  server.setRequestHandler('logging/setLevel', () => ({}));
  if (updates === 'subscribe') serveResourceSubscriptions(server, serving, surface.watcher);
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
