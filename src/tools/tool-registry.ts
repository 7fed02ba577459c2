import { z } from 'zod';
import { missingScope, type Principal, type Scope } from '../auth/principal.js';
import { Tracing } from '../observability/tracing.js';
import {
  Door,
  rawTarget,
  type CallOutcome,
  type DoorFailure,
  type DoorObserver,
  type DoorRequest,
  type Passage,
} from './door.js';
import { jsonBytes } from './json-bytes.js';
import {
  promptInput,
  type Operation,
  type OperationName,
  type Prompt,
  type PromptDescriptor,
  type PromptResult,
  type ResourceTemplate,
} from './operation.js';
import type { Tool, ToolAnnotations, ToolContext, ToolResult } from './tool.js';
import { InvalidToolCall, OperationRefused } from './tool.errors.js';

export type { CallOutcome, DoorEvent, DoorObserver } from './door.js';

/** A tool as clients see it in tools/list. */
export interface ToolDescriptor {
  name: string;
  title: string;
  description: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations: ToolAnnotations;
}

/** A call's result and how it ended. */
export interface CallRecord {
  result: ToolResult;
  outcome: CallOutcome;
}

interface Entry {
  tool: Tool;
  /** What tools/list shows, converted from the schemas at the first listing, then kept. */
  descriptor?: ToolDescriptor;
  passage: Passage<ToolResult>;
}

/** What replacing a group of tools did: the names now offered, and those refused as already taken. */
export interface GroupChange {
  added: string[];
  clashes: string[];
}

/** What a workspace serves besides tools: its prompts, resource templates and other operations. */
export interface WorkspaceSurface {
  prompts?: readonly Prompt[];
  templates?: readonly ResourceTemplate[];
  operations?: readonly Operation[];
}

/**
 * The catalogue of everything a client may reach in a workspace (tools, prompts, resource templates and
 * operations), each with the scopes it declares, and the one door every call goes through, whoever the
 * caller: lists are filtered by scope, calls pass the Door. Schemas are converted once, at the first
 * listing, not per request.
 */
export class ToolRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly listCache = new Map<string, Entry[]>();
  private readonly prompts = new Map<string, { prompt: Prompt; passage: Passage<PromptResult> }>();
  private readonly operations = new Map<OperationName, Passage>();
  private readonly templates: ResourceTemplate[] = [];
  private readonly door: Door;
  /** The tool names of each group registered at run time (an upstream's tools). */
  private readonly groups = new Map<string, string[]>();
  private readonly changeListeners = new Set<() => void>();

  constructor(
    tools: readonly Tool[],
    maxResponseBytes: number,
    tracing: Tracing = Tracing.disabled(),
    surface: WorkspaceSurface = {},
  ) {
    this.door = new Door(maxResponseBytes, tracing);
    for (const tool of tools) this.register(tool);
    for (const prompt of surface.prompts ?? []) this.registerPrompt(prompt);
    for (const operation of surface.operations ?? []) this.registerOperation(operation);
    this.templates.push(...(surface.templates ?? []));
  }

  /** Adds a tool at start-up (a tool that itself calls through the registry is added after it exists). */
  register(tool: Tool): void {
    if (this.entries.has(tool.name)) throw new Error(`Tool ${tool.name} is registered twice.`);
    this.entries.set(tool.name, entryOf(tool));
    this.listCache.clear();
  }

  registerPrompt(prompt: Prompt): void {
    if (this.prompts.has(prompt.name)) throw new Error(`Prompt ${prompt.name} is registered twice.`);
    this.prompts.set(prompt.name, { prompt, passage: promptPassage(prompt) });
  }

  registerOperation(operation: Operation): void {
    if (this.operations.has(operation.name)) throw new Error(`${operation.name} is registered twice.`);
    this.operations.set(operation.name, operationPassage(operation));
  }

  /**
   * Puts a group's tools in place of the ones it had (an upstream's tools after it connects or changes them).
   * A name another tool already holds is not taken over: it is reported as a clash.
   */
  replaceGroup(group: string, tools: readonly Tool[]): GroupChange {
    for (const name of this.groups.get(group) ?? []) this.entries.delete(name);
    const change: GroupChange = { added: [], clashes: [] };
    for (const tool of tools) {
      if (this.entries.has(tool.name)) change.clashes.push(tool.name);
      else {
        this.entries.set(tool.name, entryOf(tool));
        change.added.push(tool.name);
      }
    }
    this.groups.set(group, change.added);
    this.changed();
    return change;
  }

  /** Says the lists changed (tools replaced, or some became available or unavailable): listeners are told. */
  changed(): void {
    this.listCache.clear();
    for (const listener of this.changeListeners) {
      try {
        listener();
      } catch {
        // A listener that fails (a client gone away) must not stop the others.
      }
    }
  }

  /** Calls `listener` after each change to the lists, until the returned function is called. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  observe(observer: DoorObserver): void {
    this.door.observe(observer);
  }

  /** The tools this principal may call, less those that cannot be called now. */
  list(principal: Principal): ToolDescriptor[] {
    const key = [...principal.scopes].sort().join(',');
    let list = this.listCache.get(key);
    if (!list) {
      list = [...this.entries.values()].filter((e) => holds(principal, e.tool.scopes));
      this.listCache.set(key, list);
    }
    return list.filter((e) => e.tool.available?.() !== false).map((e) => (e.descriptor ??= describe(e.tool)));
  }

  /** The prompts this principal may get. */
  listPrompts(principal: Principal): PromptDescriptor[] {
    return [...this.prompts.values()]
      .filter(({ prompt }) => holds(principal, prompt.scopes))
      .map(({ prompt }) => ({
        name: prompt.name,
        title: prompt.title,
        description: prompt.description,
        arguments: prompt.arguments.map((a) => ({ ...a })),
      }));
  }

  /** The resource templates this principal may read through. */
  listTemplates(principal: Principal): Omit<ResourceTemplate, 'scopes'>[] {
    return this.templates
      .filter((template) => holds(principal, template.scopes))
      .map(({ scopes: _scopes, ...template }) => ({ ...template }));
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** A registered tool's declaration (scopes, annotations, schemas), or undefined for an unknown tool. */
  definition(name: string): Readonly<Tool> | undefined {
    return this.entries.get(name)?.tool;
  }

  /**
   * The scope whose lack would make the door refuse this call (not filter it, as it filters lists), or
   * undefined: an OAuth client is challenged for it before the call is made.
   */
  refusingScope(principal: Principal, request: Pick<DoorRequest, 'kind' | 'name'>): Scope | undefined {
    const passage = this.passageOf(request);
    if (!passage || passage.forbidden) return undefined;
    return missingScope(principal, passage.scopes);
  }

  private passageOf(request: Pick<DoorRequest, 'kind' | 'name'>): Passage<unknown> | undefined {
    if (request.kind === 'tool') return this.entries.get(request.name)?.passage;
    if (request.kind === 'prompt') return this.prompts.get(request.name)?.passage;
    return this.operations.get(request.name as OperationName);
  }

  /**
   * Calls a tool for a principal. Throws InvalidToolCall for an unknown tool or bad arguments (a protocol
   * error); every refusal or failure after that is a tool result with isError, whose message is safe to show.
   */
  async invoke(name: string, args: unknown, ctx: ToolContext): Promise<ToolResult> {
    return (await this.run(name, args, ctx)).result;
  }

  /** invoke(), also telling how the call ended (a refusal and an internal failure both give isError). */
  async run(name: string, args: unknown, ctx: ToolContext): Promise<CallRecord> {
    const passed = await this.door.pass({ kind: 'tool', name, args }, this.entries.get(name)?.passage, ctx);
    if ('value' in passed) return { result: passed.value, outcome: passed.outcome };
    const { failure } = passed;
    if (failure.protocol)
      throw new InvalidToolCall(
        failure.code === 'unknown_tool' ? 'unknown_tool' : 'invalid_arguments',
        failure.message,
        failure.details,
      );
    return { result: errorResult(failure.message), outcome: passed.outcome };
  }

  /** Renders a prompt for a principal; throws OperationRefused when it is unknown, out of scope or fails. */
  async getPrompt(name: string, args: unknown, ctx: ToolContext): Promise<PromptResult> {
    const passed = await this.door.pass({ kind: 'prompt', name, args }, this.prompts.get(name)?.passage, ctx);
    return valueOf(passed);
  }

  /** Performs a workspace operation for a principal; throws OperationRefused when it is refused or fails. */
  async perform<R>(name: OperationName, args: unknown, ctx: ToolContext): Promise<R> {
    const passage = this.operations.get(name) as Passage<R> | undefined;
    return valueOf(await this.door.pass({ kind: 'operation', name, args }, passage, ctx));
  }

  /** Records calls a limit at the edge refused before they reached the door, one record each. */
  refuseAll(requests: readonly DoorRequest[], ctx: ToolContext, code: string): void {
    for (const request of requests) this.door.refuse(request, this.passageOf(request), ctx, code);
  }
}

export function errorResult(message: string): ToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

function holds(principal: Principal, scopes: readonly Scope[]): boolean {
  return scopes.every((scope) => principal.scopes.has(scope));
}

function valueOf<R>(passed: Awaited<ReturnType<Door['pass']>>): R {
  if ('value' in passed) return passed.value as R;
  throw new OperationRefused(passed.failure as DoorFailure);
}

function entryOf(tool: Tool): Entry {
  return {
    tool,
    passage: {
      kind: 'tool',
      name: tool.name,
      scopes: tool.scopes,
      input: tool.input,
      handler: (args, ctx) => tool.handler(args, ctx),
      target: rawTarget,
      bytes: responseBytes,
      refused: (result) => !!result.isError,
      scopeHint: (missing) =>
        missing === 'files:write' ? ' (the workspace is read-only for this client)' : '',
    },
  };
}

function promptPassage(prompt: Prompt): Passage<PromptResult> {
  return {
    kind: 'prompt',
    name: prompt.name,
    scopes: prompt.scopes,
    input: promptInput(prompt),
    handler: async (args, ctx) => ({
      description: prompt.description,
      messages: await prompt.handler(args as Record<string, string>, ctx),
    }),
    target: (args, ctx) =>
      prompt.target ? prompt.target(args as Record<string, string>) : rawTarget(args, ctx),
    bytes: jsonBytes,
  };
}

function operationPassage(operation: Operation): Passage {
  return {
    kind: 'operation',
    name: operation.name,
    scopes: operation.scopes,
    input: operation.input,
    handler: (args, ctx) => operation.handler(args, ctx),
    target: (args) => operation.target?.(args),
    bytes: jsonBytes,
    ...(operation.forbidden && { forbidden: operation.forbidden }),
  };
}

function describe(tool: Tool): ToolDescriptor {
  const descriptor: ToolDescriptor = {
    name: tool.name,
    title: tool.title,
    description: tool.description,
    inputSchema: tool.schemas?.input ?? jsonSchema(tool.input, 'input'),
    annotations: { title: tool.title, ...tool.annotations },
  };
  const output = tool.schemas ? tool.schemas.output : tool.output && jsonSchema(tool.output, 'output');
  if (output) descriptor.outputSchema = output;
  return descriptor;
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

function responseBytes(result: ToolResult): number {
  let bytes = result.structuredContent ? jsonBytes(result.structuredContent) : 0;
  for (const block of result.content) {
    if (block.type === 'text') bytes += Buffer.byteLength(block.text);
    else if (block.type === 'resource') bytes += (block.resource.blob ?? block.resource.text ?? '').length;
    else if (block.type === 'resource_link') bytes += jsonBytes(block);
    else bytes += block.data.length;
  }
  return bytes;
}
