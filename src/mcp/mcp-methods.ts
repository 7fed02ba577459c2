import { ProtocolError, ProtocolErrorCode, ResourceNotFoundError } from '@modelcontextprotocol/server';
import type { OperationName } from '../tools/operation.js';
import type { ToolContext } from '../tools/tool.js';
import type { ToolRegistry } from '../tools/tool-registry.js';
import { InvalidToolCall, OperationRefused } from '../tools/tool.errors.js';

/** A protocol method's params, as the JSON-RPC message carried them. */
export type Params = Record<string, unknown>;

/** One MCP method of the workspace, translated into door calls. */
export type MethodHandler = (params: Params, ctx: ToolContext) => Promise<Record<string, unknown>>;

/** The methods both revisions answer alike (2025 `initialize` and 2026 `server/discover` are each era's own). */
export type WorkspaceMethod =
  | 'tools/list'
  | 'tools/call'
  | 'resources/list'
  | 'resources/templates/list'
  | 'resources/read'
  | 'prompts/list'
  | 'prompts/get'
  | 'completion/complete';

/**
 * The translation of MCP methods into the door, built once from the registry: lists are the registry's,
 * filtered by the caller's scopes, and every call passes the door. Both the SDK's protocol server (stdio,
 * and the exchanges HTTP hands to the SDK) and Bastion's own HTTP dispatch answer with these handlers, so
 * the two cannot drift apart.
 */
export function workspaceMethods(registry: ToolRegistry): Record<WorkspaceMethod, MethodHandler> {
  const perform = (name: OperationName, args: unknown, ctx: ToolContext, uri?: string) =>
    registry.perform<Record<string, unknown>>(name, args, ctx).catch((error: unknown) => {
      throw protocolError(error, uri);
    });
  return {
    'tools/list': async (_params, ctx) => ({ tools: registry.list(ctx.principal) }),
    'tools/call': async (params, ctx) => {
      try {
        return (await registry.invoke(params.name as string, params.arguments, ctx)) as unknown as Params;
      } catch (error) {
        if (error instanceof InvalidToolCall)
          throw new ProtocolError(ProtocolErrorCode.InvalidParams, error.message);
        throw error;
      }
    },
    'resources/list': (params, ctx) => perform('resources/list', { cursor: params.cursor }, ctx),
    'resources/templates/list': async (_params, ctx) => ({
      resourceTemplates: registry.listTemplates(ctx.principal),
    }),
    'resources/read': (params, ctx) =>
      perform('resources/read', { uri: params.uri }, ctx, params.uri as string),
    'prompts/list': async (_params, ctx) => ({ prompts: registry.listPrompts(ctx.principal) }),
    'prompts/get': (params, ctx) =>
      registry.getPrompt(params.name as string, params.arguments ?? {}, ctx).catch((error: unknown) => {
        throw protocolError(error);
      }) as unknown as Promise<Params>,
    'completion/complete': (params, ctx) =>
      perform('completion/complete', { ref: params.ref, argument: params.argument }, ctx),
  };
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
