import { z } from 'zod';
import type { Principal, Scope } from '../auth/principal.js';
import { BastionError } from '../common/bastion-error.js';
import type { Sandbox } from '../workspace/sandbox.js';
import { SandboxRefusal } from '../workspace/sandbox.errors.js';
import { Tracing } from '../observability/tracing.js';
import { jsonBytes } from './json-bytes.js';
import type { Tool, ToolAnnotations, ToolContext, ToolResult } from './tool.js';
import { InvalidToolCall, ToolFailure, ToolRefusal } from './tool.errors.js';

/** A tool as clients see it in tools/list. */
export interface ToolDescriptor {
  name: string;
  title: string;
  description: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations: ToolAnnotations;
}

export type CallOutcome = 'ok' | 'refused' | 'error';

/** A call's result and how it ended. */
export interface CallRecord {
  result: ToolResult;
  outcome: CallOutcome;
}

/** Told about every call that passes the door (audit and metrics attach here). */
export type CallObserver = (event: {
  tool: string;
  principal: Principal;
  outcome: CallOutcome;
  code?: string;
  durationMs: number;
  requestId: string;
  /** The path the call named, workspace-relative when it is inside the workspace (never file contents). */
  target?: string;
}) => void;

interface Entry {
  tool: Tool;
  descriptor: ToolDescriptor;
}

/** What replacing a group of tools did: the names now offered, and those refused as already taken. */
export interface GroupChange {
  added: string[];
  clashes: string[];
}

/**
 * The catalogue of tools and the one door every call goes through, whoever the caller:
 * lookup -> authorization (scope) -> validation (schema) -> handler (sandbox) -> response cap -> observers.
 * Schemas are converted once, here, not per request.
 */
export class ToolRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly listCache = new Map<string, Entry[]>();
  private readonly observers: CallObserver[] = [];
  /** The tool names of each group registered at run time (an upstream's tools). */
  private readonly groups = new Map<string, string[]>();
  private readonly changeListeners = new Set<() => void>();

  constructor(
    tools: readonly Tool[],
    private readonly maxResponseBytes: number,
    private readonly tracing: Tracing = Tracing.start({ serviceName: 'bastion', serviceVersion: '' }),
  ) {
    for (const tool of tools) this.register(tool);
  }

  /** Adds a tool at start-up (a tool that itself calls through the registry is added after it exists). */
  register(tool: Tool): void {
    if (this.entries.has(tool.name)) throw new Error(`Tool ${tool.name} is registered twice.`);
    this.entries.set(tool.name, { tool, descriptor: describe(tool) });
    this.listCache.clear();
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
        this.entries.set(tool.name, { tool, descriptor: describe(tool) });
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

  observe(observer: CallObserver): void {
    this.observers.push(observer);
  }

  /** The tools this principal may call, less those that cannot be called now. */
  list(principal: Principal): ToolDescriptor[] {
    const key = [...principal.scopes].sort().join(',');
    let list = this.listCache.get(key);
    if (!list) {
      list = [...this.entries.values()].filter((e) => principal.scopes.has(e.tool.scope));
      this.listCache.set(key, list);
    }
    return list.filter((e) => e.tool.available?.() !== false).map((e) => e.descriptor);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** A registered tool's declaration (scope, annotations, schemas), or undefined for an unknown tool. */
  definition(name: string): Readonly<Tool> | undefined {
    return this.entries.get(name)?.tool;
  }

  /** The scope a tool needs, or undefined for an unknown tool. */
  scopeOf(name: string): Scope | undefined {
    return this.entries.get(name)?.tool.scope;
  }

  /**
   * Calls a tool for a principal. Throws InvalidToolCall for an unknown tool or bad arguments (a protocol
   * error); every refusal or failure after that is a tool result with isError, whose message is safe to show.
   */
  async invoke(name: string, args: unknown, ctx: ToolContext): Promise<ToolResult> {
    return (await this.run(name, args, ctx)).result;
  }

  /** invoke(), also telling how the call ended (a refusal and an internal failure both give isError). */
  run(name: string, args: unknown, ctx: ToolContext): Promise<CallRecord> {
    const entry = this.entries.get(name);
    if (!entry)
      throw new InvalidToolCall('unknown_tool', `Unknown tool: ${JSON.stringify(name.slice(0, 100))}`);
    if (!this.tracing.enabled) return this.call(entry, args, ctx);
    return this.tracing.inSpan(`tool ${name}`, { 'bastion.tool': name }, () => this.call(entry, args, ctx));
  }

  private async call(entry: Entry, args: unknown, ctx: ToolContext): Promise<CallRecord> {
    const name = entry.tool.name;
    const started = performance.now();
    const finish = (result: ToolResult, outcome: CallOutcome, code?: string): CallRecord => {
      const target = callTarget(args, ctx.sandbox);
      const event = {
        tool: name,
        principal: ctx.principal,
        outcome,
        durationMs: performance.now() - started,
        requestId: ctx.requestId,
        ...(code && { code }),
        ...(target && { target }),
      };
      for (const observer of this.observers) observer(event);
      return { result, outcome };
    };

    const { tool } = entry;
    if (!ctx.principal.scopes.has(tool.scope)) {
      const why = tool.scope === 'files:write' ? ' (the workspace is read-only for this client)' : '';
      return finish(
        errorResult(`Refused: ${name} needs the ${tool.scope} scope${why}.`),
        'refused',
        'forbidden',
      );
    }

    const parsed = tool.input.safeParse(args ?? {});
    if (!parsed.success) {
      const details = parsed.error.issues.map(
        (i) => `${i.path.map(String).join('.') || '(arguments)'}: ${i.message}`,
      );
      throw new InvalidToolCall(
        'invalid_arguments',
        `Invalid arguments for ${name}: ${details.join('; ')}`,
        details,
      );
    }

    try {
      const result = await tool.handler(parsed.data, ctx);
      if (responseBytes(result) > this.maxResponseBytes) {
        return finish(
          errorResult(
            `Refused: the result of ${name} is over the ${this.maxResponseBytes}-byte response limit. Ask for less (a narrower path, head or tail, fewer files).`,
          ),
          'refused',
          'too_large',
        );
      }
      return finish(result, result.isError ? 'refused' : 'ok');
    } catch (error) {
      if (error instanceof SandboxRefusal || error instanceof ToolRefusal) {
        return finish(errorResult(error.message), 'refused', error.code);
      }
      if (ctx.signal.aborted)
        return finish(errorResult(`${name} was cancelled or timed out.`), 'refused', 'aborted');
      if (error instanceof ToolFailure) {
        ctx.logger.warn({ tool: name, code: error.code, requestId: ctx.requestId }, error.message);
        return finish(errorResult(error.message), 'error', error.code);
      }
      ctx.logger.error({ err: error, tool: name, requestId: ctx.requestId }, 'tool failed');
      const code = error instanceof BastionError ? error.code : 'internal';
      return finish(
        errorResult(`${name} failed with an internal error (request ${ctx.requestId}).`),
        'error',
        code,
      );
    }
  }
}

export function errorResult(message: string): ToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
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

const MAX_TARGET_CHARS = 256;

/** The path a call named (`path`, `source -> destination`, or the first of `paths`), for the audit log. */
export function callTarget(args: unknown, sandbox: Sandbox): string | undefined {
  if (typeof args !== 'object' || args === null) return undefined;
  const { path, source, destination, paths } = args as Record<string, unknown>;
  if (typeof path === 'string') return shown(path, sandbox);
  if (typeof source === 'string' && typeof destination === 'string')
    return `${shown(source, sandbox)} -> ${shown(destination, sandbox)}`;
  if (Array.isArray(paths) && typeof paths[0] === 'string') {
    const more = paths.length > 1 ? ` (+${paths.length - 1} more)` : '';
    return shown(paths[0], sandbox) + more;
  }
  return undefined;
}

/** Workspace-relative when the path is inside; otherwise what the client sent, cut short. */
function shown(clientPath: string, sandbox: Sandbox): string {
  try {
    return sandbox.relative(clientPath) || '.';
  } catch {
    return clientPath.slice(0, MAX_TARGET_CHARS);
  }
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
