import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Principal, Scope } from '../auth/principal.js';
import type { Sandbox } from '../workspace/sandbox.js';

export interface ToolAnnotations {
  title?: string;
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

export interface ProgressUpdate {
  progress: number;
  total?: number;
  message?: string;
}

/** Everything a tool handler may know about its call. Handlers never see HTTP, sessions or models. */
export interface ToolContext {
  principal: Principal;
  sandbox: Sandbox;
  /** Aborted on timeout, cancellation or client disconnect. */
  signal: AbortSignal;
  logger: Logger;
  requestId: string;
  /** The MCP client's name (clientInfo.name), when the transport tells it. */
  client?: string;
  progress?: (update: ProgressUpdate) => Promise<void>;
  /** Tells this caller that a workspace resource changed, when its transport can (resource subscriptions). */
  resourceUpdated?: (uri: string) => void;
}

export type ContentBlock =
  | { type: 'text'; text: string }
  | { type: 'image' | 'audio'; data: string; mimeType: string }
  | { type: 'resource'; resource: { uri: string; mimeType?: string; blob?: string; text?: string } }
  | { type: 'resource_link'; uri: string; name: string; mimeType?: string; description?: string };

export interface ToolResult {
  content: ContentBlock[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

export interface Tool<I extends z.ZodType = z.ZodType> {
  name: string;
  title: string;
  description: string;
  /** The scopes a principal needs, all of them, to see and call the tool. */
  scopes: readonly Scope[];
  annotations: Omit<ToolAnnotations, 'title'>;
  input: I;
  /** Shape of structuredContent, when the result is data. */
  output?: z.ZodType;
  /** JSON Schemas shown to clients as they are (an upstream's own), instead of ones derived from the above. */
  schemas?: { input: Record<string, unknown>; output?: Record<string, unknown> };
  /** False while the tool cannot be called (its upstream is down): it is left out of lists meanwhile. */
  available?: () => boolean;
  handler(args: z.output<I>, ctx: ToolContext): Promise<ToolResult>;
}

/** Declares a tool with its argument type inferred from the input schema. */
export function defineTool<I extends z.ZodType>(tool: Tool<I>): Tool<I> {
  return tool;
}

/** A result whose text block and structured copy carry the same data. */
export function dataResult(text: string, structured: Record<string, unknown>): ToolResult {
  return { content: [{ type: 'text', text }], structuredContent: structured };
}
