import { z } from 'zod';
import type { Scope } from '../auth/principal.js';
import type { ContentBlock, ToolContext } from './tool.js';

/** What passes the door: a tool call, a prompt, or another operation on the workspace. */
export type DoorKind = 'tool' | 'prompt' | 'operation';

/** The workspace operations besides tools and prompts, by the MCP method that asks for them. */
export type OperationName =
  'resources/list' | 'resources/read' | 'resources/subscribe' | 'completion/complete';

/**
 * A workspace operation that is not a tool call: a resource list or read, a completion, a subscription. It
 * is registered with the door beside the tools and declares its scopes; `mcp/` only translates protocol
 * methods into these.
 */
export interface Operation<I extends z.ZodType = z.ZodType, R = unknown> {
  name: OperationName;
  /** The scopes a principal needs, all of them. */
  scopes: readonly Scope[];
  input: I;
  /** The workspace path the operation touches, for the audit record (never contents). */
  target?(args: z.output<I>): string | undefined;
  /**
   * The answer to a principal without the scopes, instead of an error: lists and completions are filtered
   * to nothing, as tools/list is. The refusal is recorded all the same.
   */
  forbidden?(): R;
  handler(args: z.output<I>, ctx: ToolContext): Promise<R>;
}

export interface PromptArgument {
  name: string;
  description: string;
  required: boolean;
}

export interface PromptMessage {
  role: 'user' | 'assistant';
  content: ContentBlock;
}

export interface PromptResult {
  description: string;
  messages: PromptMessage[];
}

/** A prompt as clients see it in prompts/list. */
export interface PromptDescriptor {
  name: string;
  title: string;
  description: string;
  arguments: PromptArgument[];
}

/** A prompt: listed to principals holding its scopes, rendered through the door. */
export interface Prompt extends PromptDescriptor {
  scopes: readonly Scope[];
  /** The workspace path the prompt reads, for the audit record. */
  target?(args: Record<string, string>): string | undefined;
  handler(args: Record<string, string>, ctx: ToolContext): Promise<PromptMessage[]>;
}

/** A resource template: listed to principals holding its scopes. */
export interface ResourceTemplate {
  uriTemplate: string;
  name: string;
  title: string;
  description: string;
  scopes: readonly Scope[];
}

/** Declares an operation with its argument type inferred from the input schema. */
export function defineOperation<I extends z.ZodType, R>(operation: Operation<I, R>): Operation<I, R> {
  return operation;
}

/** The arguments schema of a prompt: each declared argument a string, required ones non-empty, no others. */
export function promptInput(prompt: PromptDescriptor): z.ZodType<Record<string, string>> {
  const shape: Record<string, z.ZodType> = {};
  for (const arg of prompt.arguments) {
    shape[arg.name] = arg.required ? z.string().min(1, 'is required') : z.string().optional();
  }
  return z.strictObject(shape) as unknown as z.ZodType<Record<string, string>>;
}
