import type { z } from 'zod';
import { missingScope, type Principal, type Scope } from '../auth/principal.js';
import { BastionError } from '../common/bastion-error.js';
import type { Tracing } from '../observability/tracing.js';
import { SandboxRefusal } from '../workspace/sandbox.errors.js';
import type { DoorKind } from './operation.js';
import type { ToolContext } from './tool.js';
import { ToolFailure, ToolRefusal } from './tool.errors.js';

export type CallOutcome = 'ok' | 'refused' | 'error';

/** One passage through the door, as audit and metrics see it: every call, refused ones included, once. */
export interface DoorEvent {
  kind: DoorKind;
  /** The tool or prompt name, or the operation's MCP method. */
  name: string;
  principal: Principal;
  outcome: CallOutcome;
  code?: string;
  durationMs: number;
  requestId: string;
  /** The path the call named, workspace-relative when it is inside the workspace (never file contents). */
  target?: string;
}

/** Told about every passage (audit and metrics attach here). */
export type DoorObserver = (event: DoorEvent) => void;

/** Why a call did not produce its value. The message is safe to show to the caller. */
export interface DoorFailure {
  code: string;
  message: string;
  /** The call could not be dispatched (unknown name, invalid arguments): a protocol error, not a result. */
  protocol: boolean;
  details?: readonly string[];
}

/** How a passage ended: a value (a tool's isError result is a refusal with a value), or a failure. */
export type Passed<R> =
  | { outcome: 'ok' | 'refused'; value: R; code?: string }
  | { outcome: 'refused' | 'error'; failure: DoorFailure };

/** What the door needs to know of anything it lets through; built once, when it is registered. */
export interface Passage<R = unknown> {
  kind: DoorKind;
  name: string;
  scopes: readonly Scope[];
  input: z.ZodType;
  handler(args: unknown, ctx: ToolContext): Promise<R>;
  /** The path the call names, for the audit record. */
  target(args: unknown, ctx: ToolContext): string | undefined;
  /** The answer's size, checked against the response cap. */
  bytes(value: R): number;
  /** A value that is itself a refusal (a tool result with isError). */
  refused?(value: R): boolean;
  /** The answer to a principal without the scopes, instead of a failure (filtered lists). */
  forbidden?(): R;
  /** Why the scope is missing, in words a user can act on (", the workspace is read-only"). */
  scopeHint?(missing: Scope): string;
}

/** A call as the transport named it: the door looks it up. */
export interface DoorRequest {
  kind: DoorKind;
  name: string;
  args: unknown;
}

/**
 * The one door: lookup -> authorization (every scope the passage declares) -> validation (its schema) ->
 * handler (in the caller's sandbox) -> response cap -> one event to every observer, exactly once, refused
 * calls included. Observers are isolated from each other and from the outcome.
 */
export class Door {
  private readonly observers: DoorObserver[] = [];

  constructor(
    private readonly maxResponseBytes: number,
    private readonly tracing: Tracing,
  ) {}

  observe(observer: DoorObserver): void {
    this.observers.push(observer);
  }

  pass<R>(request: DoorRequest, passage: Passage<R> | undefined, ctx: ToolContext): Promise<Passed<R>> {
    if (!this.tracing.enabled) return this.run(request, passage, ctx);
    const span = request.kind === 'tool' ? `tool ${request.name}` : `${request.kind} ${request.name}`;
    return this.tracing.inSpan(span, { [`bastion.${request.kind}`]: request.name }, () =>
      this.run(request, passage, ctx),
    );
  }

  /** Records a call refused before it reached the door (a rate limit at the edge), once, like any other. */
  refuse(request: DoorRequest, passage: Passage | undefined, ctx: ToolContext, code: string): void {
    this.notify(request, ctx, { outcome: 'refused', code }, 0, targetOf(request, passage, ctx));
  }

  private async run<R>(
    request: DoorRequest,
    passage: Passage<R> | undefined,
    ctx: ToolContext,
  ): Promise<Passed<R>> {
    const started = performance.now();
    const parsed = passage?.input.safeParse(request.args ?? {});
    const passed: Passed<R> =
      passage && parsed
        ? await this.decide(passage, parsed, ctx)
        : refusal(`unknown_${request.kind}`, `Unknown ${request.kind}: ${shortName(request.name)}`, true);
    const target =
      passage && parsed?.success ? passage.target(parsed.data, ctx) : rawTarget(request.args, ctx);
    this.notify(request, ctx, passed, performance.now() - started, target);
    return passed;
  }

  private async decide<R>(
    passage: Passage<R>,
    parsed: z.ZodSafeParseResult<unknown>,
    ctx: ToolContext,
  ): Promise<Passed<R>> {
    const missing = missingScope(ctx.principal, passage.scopes);
    if (missing) {
      if (passage.forbidden) return { outcome: 'refused', value: passage.forbidden(), code: 'forbidden' };
      const hint = passage.scopeHint?.(missing) ?? '';
      return refusal('forbidden', `Refused: ${passage.name} needs the ${missing} scope${hint}.`, false);
    }
    if (!parsed.success) {
      const details = parsed.error.issues.map(
        (i) => `${i.path.map(String).join('.') || '(arguments)'}: ${i.message}`,
      );
      return {
        outcome: 'refused',
        failure: {
          code: 'invalid_arguments',
          message: `Invalid arguments for ${passage.name}: ${details.join('; ')}`,
          protocol: true,
          details,
        },
      };
    }
    return this.handle(passage, parsed.data, ctx);
  }

  private async handle<R>(passage: Passage<R>, args: unknown, ctx: ToolContext): Promise<Passed<R>> {
    const { name } = passage;
    try {
      const value = await passage.handler(args, ctx);
      if (passage.bytes(value) > this.maxResponseBytes) {
        return refusal(
          'too_large',
          `Refused: the result of ${name} is over the ${this.maxResponseBytes}-byte response limit. Ask for less (a narrower path, head or tail, fewer files).`,
          false,
        );
      }
      return { outcome: passage.refused?.(value) ? 'refused' : 'ok', value };
    } catch (error) {
      return failureOf(error, name, ctx);
    }
  }

  private notify(
    request: DoorRequest,
    ctx: ToolContext,
    passed: { outcome: CallOutcome; code?: string; failure?: DoorFailure },
    durationMs: number,
    target: string | undefined,
  ): void {
    const code = passed.failure?.code ?? passed.code;
    const event: DoorEvent = {
      kind: request.kind,
      name: request.name,
      principal: ctx.principal,
      outcome: passed.outcome,
      durationMs,
      requestId: ctx.requestId,
      ...(code !== undefined && { code }),
      ...(target !== undefined && { target }),
    };
    for (const observer of this.observers) {
      try {
        observer(event);
      } catch (error) {
        // An observer's failure (a full disk under the audit log) is its own: the call's outcome stands.
        ctx.logger.error({ err: error, reqId: ctx.requestId }, 'door observer failed');
      }
    }
  }
}

/** The path a call names: by its passage's rule when its arguments are valid, else as the client sent it. */
function targetOf(request: DoorRequest, passage: Passage | undefined, ctx: ToolContext): string | undefined {
  const parsed = passage?.input.safeParse(request.args ?? {});
  return passage && parsed?.success ? passage.target(parsed.data, ctx) : rawTarget(request.args, ctx);
}

function refusal(code: string, message: string, protocol: boolean): Passed<never> {
  return { outcome: 'refused', failure: { code, message, protocol } };
}

/** A handler's throw, as the caller may see it: refusals in their own words, anything else masked. */
function failureOf(error: unknown, name: string, ctx: ToolContext): Passed<never> {
  if (error instanceof SandboxRefusal || error instanceof ToolRefusal)
    return refusal(error.code, error.message, false);
  if (ctx.signal.aborted) return refusal('aborted', `${name} was cancelled or timed out.`, false);
  if (error instanceof ToolFailure) {
    ctx.logger.warn({ tool: name, code: error.code, reqId: ctx.requestId }, error.message);
    return { outcome: 'error', failure: { code: error.code, message: error.message, protocol: false } };
  }
  ctx.logger.error({ err: error, tool: name, reqId: ctx.requestId }, 'call failed');
  return {
    outcome: 'error',
    failure: {
      code: error instanceof BastionError ? error.code : 'internal',
      message: `${name} failed with an internal error (request ${ctx.requestId}).`,
      protocol: false,
    },
  };
}

function shortName(name: string): string {
  return JSON.stringify(String(name).slice(0, 100));
}

const MAX_TARGET_CHARS = 256;

/** The path a call named (`path`, `source -> destination`, or the first of `paths`), for the audit log. */
export function rawTarget(args: unknown, ctx: Pick<ToolContext, 'sandbox'>): string | undefined {
  if (typeof args !== 'object' || args === null) return undefined;
  const { path, source, destination, paths } = args as Record<string, unknown>;
  if (typeof path === 'string') return shownPath(path, ctx);
  if (typeof source === 'string' && typeof destination === 'string')
    return `${shownPath(source, ctx)} -> ${shownPath(destination, ctx)}`;
  if (Array.isArray(paths) && typeof paths[0] === 'string') {
    const more = paths.length > 1 ? ` (+${paths.length - 1} more)` : '';
    return shownPath(paths[0], ctx) + more;
  }
  return undefined;
}

/** Workspace-relative when the path is inside; otherwise what the client sent, cut short. */
export function shownPath(clientPath: string, ctx: Pick<ToolContext, 'sandbox'>): string {
  try {
    return ctx.sandbox.relative(clientPath) || '.';
  } catch {
    return clientPath.slice(0, MAX_TARGET_CHARS);
  }
}
