import { isDeepStrictEqual } from 'node:util';
import { missingScope, type Principal } from '../auth/principal.js';
import type { AgentConfig } from '../config/config.schema.js';
import type { ToolRegistry } from '../tools/tool-registry.js';
import type { ProposedCall } from './model-provider.js';

/** Why the Supervisor refused a step: a closed set, used as a metrics label and an audit code. */
export type RefusalReason =
  'unknown_tool' | 'out_of_scope' | 'read_only' | 'budget' | 'loop' | 'invalid_arguments';

export const REFUSAL_REASONS: readonly RefusalReason[] = [
  'unknown_tool',
  'out_of_scope',
  'read_only',
  'budget',
  'loop',
  'invalid_arguments',
];

export type Decision = { allow: true } | { allow: false; reason: RefusalReason; message: string };

/** Told about every decision (audit and metrics attach here). */
export type DecisionObserver = (event: {
  principal: Principal;
  conversationId: string;
  requestId: string;
  tool: string;
  decision: Decision;
}) => void;

export interface TurnScope {
  principal: Principal;
  conversationId: string;
  requestId: string;
  /** The conversation or the workspace is read-only: the agent may not write, whatever the scopes. */
  readOnly: boolean;
}

type SupervisorLimits = Pick<AgentConfig['limits'], 'maxToolCalls' | 'maxRepeats'>;

/**
 * The policy on every step the model proposes: allow, or refuse with a reason the model is told (as a tool
 * error) so it can change course. Checks, in order: the tool exists and is one the agent may use; the
 * principal holds its scope; no writes in a read-only turn; the turn's tool-call budget; the arguments fit
 * the tool's schema; the same call is not repeated in a loop. The door (ToolRegistry) checks scope and
 * schema again when an allowed call runs.
 */
export class Supervisor {
  private readonly observers: DecisionObserver[] = [];

  constructor(
    private readonly registry: ToolRegistry,
    private readonly limits: SupervisorLimits,
  ) {}

  observe(observer: DecisionObserver): void {
    this.observers.push(observer);
  }

  /** A fresh ledger for one turn: budgets and repeats are counted per turn. */
  startTurn(scope: TurnScope): TurnSupervision {
    return new TurnSupervision(this.registry, this.limits, scope, (tool, decision) => {
      const { principal, conversationId, requestId } = scope;
      for (const observer of this.observers)
        observer({ principal, conversationId, requestId, tool, decision });
    });
  }
}

/** The tools the agent may use: workspace and upstream tools, never the agent's own or administrative ones. */
export function isAgentTool(scopes: readonly string[]): boolean {
  return !scopes.includes('agent') && !scopes.includes('admin');
}

export class TurnSupervision {
  private calls = 0;
  private readonly seen: Array<{ name: string; args: unknown; count: number }> = [];

  constructor(
    private readonly registry: ToolRegistry,
    private readonly limits: SupervisorLimits,
    private readonly scope: TurnScope,
    private readonly report: (tool: string, decision: Decision) => void,
  ) {}

  review(call: ProposedCall): Decision {
    const decision = this.decide(call);
    this.report(this.registry.has(call.name) ? call.name : 'other', decision);
    return decision;
  }

  private decide(call: ProposedCall): Decision {
    this.calls += 1;
    const tool = this.registry.definition(call.name);
    const name = JSON.stringify(call.name.slice(0, 100));
    if (!tool || !isAgentTool(tool.scopes))
      return refuse('unknown_tool', `There is no tool named ${name} available to you.`);
    const missing = missingScope(this.scope.principal, tool.scopes);
    if (missing)
      return refuse('out_of_scope', `${tool.name} needs the ${missing} scope, which this client lacks.`);
    if (this.scope.readOnly && !tool.annotations.readOnlyHint)
      return refuse('read_only', `${tool.name} changes files, and this conversation is read-only.`);
    if (this.calls > this.limits.maxToolCalls)
      return refuse(
        'budget',
        `The limit of ${this.limits.maxToolCalls} tool calls for one turn is reached; answer with what you have.`,
      );
    const parsed = tool.input.safeParse(call.arguments ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues
        .slice(0, 5)
        .map((i) => `${i.path.map(String).join('.') || '(arguments)'}: ${i.message}`);
      return refuse('invalid_arguments', `Invalid arguments for ${tool.name}: ${issues.join('; ')}`);
    }
    return this.checkRepeat(tool.name, parsed.data);
  }

  private checkRepeat(name: string, args: unknown): Decision {
    let entry = this.seen.find((s) => s.name === name && isDeepStrictEqual(s.args, args));
    if (!entry) {
      entry = { name, args, count: 0 };
      this.seen.push(entry);
    }
    entry.count += 1;
    if (entry.count > this.limits.maxRepeats)
      return refuse(
        'loop',
        `${name} was already called ${this.limits.maxRepeats} time(s) with these arguments in this turn; use the earlier result.`,
      );
    return { allow: true };
  }
}

function refuse(reason: RefusalReason, message: string): Decision {
  return { allow: false, reason, message: `Refused by the supervisor: ${message}` };
}
