import {
  ProtocolError,
  ProtocolErrorCode,
  ResourceNotFoundError,
  Server,
  type ServerContext,
} from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { OperationName } from '../tools/operation.js';
import type { ToolContext } from '../tools/tool.js';
import type { ToolRegistry } from '../tools/tool-registry.js';
import { InvalidToolCall, OperationRefused } from '../tools/tool.errors.js';
import type { FileWatcher } from '../workspace/file-watcher.js';
import type { Sandbox } from '../workspace/sandbox.js';
import { SERVER_INFO, SERVER_INSTRUCTIONS, serverCapabilities, type ResourceUpdates } from './server-info.js';
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
  /** The watches behind resource subscriptions (closed with the transports). */
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
 * Builds the SDK's protocol server for one serving unit. It only translates protocol methods into door
 * calls: every list is the registry's, filtered by the principal's scopes, and every call passes the door.
 * Everything heavy (schemas, descriptors) was built once at start.
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
  const { registry } = surface;
  const { principal } = serving;
  const context = (ctx: ServerContext, progressToken?: string | number) =>
    toolContext(serving, ctx, progressToken, server.getClientVersion()?.name);
  const perform = <R>(name: OperationName, args: unknown, ctx: ToolContext, uri?: string) =>
    registry.perform<R>(name, args, ctx).catch((error: unknown) => {
      throw protocolError(error, uri);
    });

  server.setRequestHandler('tools/list', () => ({ tools: registry.list(principal) }) as never);
  server.setRequestHandler('tools/call', async (request, ctx) => {
    try {
      const { name, arguments: args, _meta } = request.params;
      return (await registry.invoke(name, args, context(ctx, _meta?.progressToken))) as never;
    } catch (error) {
      if (error instanceof InvalidToolCall)
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, error.message);
      throw error;
    }
  });
  server.setRequestHandler('resources/list', (request, ctx) =>
    perform('resources/list', { cursor: request.params?.cursor }, context(ctx)),
  );
  server.setRequestHandler('resources/templates/list', () => ({
    resourceTemplates: registry.listTemplates(principal),
  }));
  server.setRequestHandler('resources/read', (request, ctx) =>
    perform('resources/read', { uri: request.params.uri }, context(ctx), request.params.uri),
  );
  server.setRequestHandler('prompts/list', () => ({ prompts: registry.listPrompts(principal) }));
  server.setRequestHandler(
    'prompts/get',
    (request, ctx) =>
      registry
        .getPrompt(request.params.name, request.params.arguments ?? {}, context(ctx))
        .catch((error: unknown) => {
          throw protocolError(error);
        }) as never,
  );
  server.setRequestHandler('completion/complete', (request, ctx) =>
    perform(
      'completion/complete',
      { ref: request.params.ref, argument: request.params.argument },
      context(ctx),
    ),
  );
  server.setRequestHandler('logging/setLevel', () => ({}));
  if (updates === 'subscribe')
    serveResourceSubscriptions(server, (uri, ctx, resourceUpdated) =>
      perform<{ stop(): void }>('resources/subscribe', { uri }, { ...context(ctx), resourceUpdated }, uri),
    );
  return server;
}

/**
 * A door refusal as the protocol says it: a resource that is not there is not-found (SEP-2164, with the
 * URI in the error data), a failure inside Bastion is internal, and every other refusal is invalid params
 * with the door's message.
 */
export function protocolError(error: unknown, uri?: string): unknown {
  if (!(error instanceof OperationRefused)) return error;
  if (error.code === 'not_found' && uri !== undefined) {
    const message = error.message.startsWith('Resource not found')
      ? error.message
      : `Resource not found: ${uri}`;
    return new ResourceNotFoundError(uri, message);
  }
  if (!error.protocol && error.code === 'internal')
    return new ProtocolError(ProtocolErrorCode.InternalError, error.message);
  return new ProtocolError(ProtocolErrorCode.InvalidParams, error.message);
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
