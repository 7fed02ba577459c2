import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { AgentConfig } from '../config/config.schema.js';
import { BastionError } from '../common/bastion-error.js';
import { formatMs } from '../common/duration.js';
import type { StepRecord, Turn, Usage } from '../conversations/conversation.js';
import type { ToolContext } from '../tools/tool.js';
import { errorResult, type CallRecord, type ToolRegistry } from '../tools/tool-registry.js';
import { InvalidToolCall } from '../tools/tool.errors.js';
import type { Sandbox } from '../workspace/sandbox.js';
import { historyWindow } from './history-window.js';
import type { CallResult, ModelReply, ModelRequest, ModelTool, ProposedCall } from './model-provider.js';
import type { ModelChoice, ModelRouter } from './model-router.js';
import { stepSummary } from './step-summary.js';
import { isAgentTool, type Supervisor, type TurnSupervision } from './supervisor.js';
import { systemPrompt } from './system-prompt.js';
import { OutputBudget } from './tool-output.js';

/** The caller cancelled the turn (or went away): nothing of it is kept. */
export class TurnCancelled extends BastionError {
  constructor() {
    super('cancelled', 'The turn was cancelled.');
  }
}

export interface TurnInput {
  principal: Principal;
  sandbox: Sandbox;
  conversationId: string;
  prompt: string;
  /** The conversation's earlier turns, oldest first. */
  history: readonly Turn[];
  readOnly: boolean;
  /** Aborted when the caller cancels or disconnects. */
  signal: AbortSignal;
  logger: Logger;
  requestId: string;
  client?: string;
  /** Told about each step as soon as it is done (progress notifications). */
  onStep?: (step: StepRecord, index: number) => void;
}

export interface TurnOutput {
  answer: string;
  steps: StepRecord[];
  usage: Usage;
  provider: string;
  model: string;
  /** The limit that ended the turn before the model answered, if one did. */
  limit?: 'steps' | 'time';
}

type AgentLimits = AgentConfig['limits'];

/**
 * The loop: history + system prompt + the tools this principal may use -> model -> proposed calls ->
 * Supervisor -> the door (ToolRegistry) -> results back to the model as data, until the model answers or a
 * limit (model requests, tool calls, wall time, bytes of output fed back) ends the turn.
 */
export class SecureAgent {
  constructor(
    private readonly registry: ToolRegistry,
    private readonly supervisor: Supervisor,
    private readonly router: ModelRouter,
    private readonly limits: AgentLimits,
    private readonly maxOutputTokens: number,
  ) {}

  /** The provider a turn for this caller would use (a metrics label). */
  providerFor(principal: Principal, client?: string): string {
    return this.router.select(principal, client).name;
  }

  async runTurn(input: TurnInput): Promise<TurnOutput> {
    const choice = this.router.select(input.principal, input.client);
    // AbortSignal.timeout, on the global timer: its own is out of reach of a fake clock in tests.
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
      this.limits.turnTimeMs,
    ).unref();
    const signal = AbortSignal.any([input.signal, deadline.signal]);
    const window = historyWindow(input.history, {
      turns: this.limits.historyTurns,
      tokens: this.limits.historyTokens,
    });
    const tools = this.toolsFor(input.principal, input.readOnly);
    const request: ModelRequest = {
      model: choice.model,
      system: systemPrompt({
        readOnly: input.readOnly,
        dropped: window.dropped,
        maxToolCalls: this.limits.maxToolCalls,
        otherServers: tools.some((t) => !this.fileTool(t.name)),
      }),
      messages: [...window.messages, { role: 'user', text: input.prompt }],
      tools,
      maxOutputTokens: this.maxOutputTokens,
    };
    const turn = new TurnState(choice, input, this.limits);
    const supervision = this.supervisor.startTurn({
      principal: input.principal,
      conversationId: input.conversationId,
      requestId: input.requestId,
      readOnly: input.readOnly,
    });
    try {
      for (let step = 1; step <= this.limits.maxSteps; step++) {
        const reply = await this.ask(choice, request, signal, turn);
        if (reply.calls.length === 0) return turn.finish(answerOf(reply));
        request.messages.push({ role: 'assistant', text: reply.text, calls: reply.calls });
        const results: CallResult[] = [];
        for (const call of reply.calls) results.push(await this.step(call, supervision, turn, signal));
        request.messages.push({ role: 'tool', results });
      }
      return turn.finish(
        `I stopped after ${this.limits.maxSteps} model requests, the limit for one turn, before finishing. ` +
          'The steps above show what was done; ask me to continue, or narrow the request.',
        'steps',
      );
    } catch (error) {
      if (input.signal.aborted) throw new TurnCancelled();
      if (deadline.signal.aborted)
        return turn.finish(
          `I ran out of time (${formatMs(this.limits.turnTimeMs)} per turn) before finishing. ` +
            'The steps above show what was done; ask me to continue, or narrow the request.',
          'time',
        );
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The workspace tools the principal may call; in a read-only turn, only those that change nothing. */
  private toolsFor(principal: Principal, readOnly: boolean): ModelTool[] {
    return this.registry
      .list(principal)
      .filter((d) => isAgentTool(this.registry.definition(d.name)?.scopes ?? ['admin']))
      .filter((d) => !readOnly || d.annotations.readOnlyHint)
      .map((d) => ({ name: d.name, description: d.description, inputSchema: d.inputSchema }));
  }

  /** A workspace tool (as opposed to one of another server's). */
  private fileTool(name: string): boolean {
    const scopes = this.registry.definition(name)?.scopes ?? [];
    return scopes.length > 0 && scopes.every((scope) => scope.startsWith('files:'));
  }

  private async ask(
    choice: ModelChoice,
    request: ModelRequest,
    signal: AbortSignal,
    turn: TurnState,
  ): Promise<ModelReply> {
    const reply = await choice.provider.complete(request, signal);
    turn.count(reply);
    return reply;
  }

  private async step(
    call: ProposedCall,
    supervision: TurnSupervision,
    turn: TurnState,
    signal: AbortSignal,
  ): Promise<CallResult> {
    const decision = supervision.review(call);
    if (!decision.allow) {
      turn.record({ tool: call.name, outcome: 'refused', summary: decision.message });
      return { callId: call.id, name: call.name, content: decision.message, isError: true };
    }
    const { result, outcome } = await this.invoke(call, turn.toolContext(signal));
    turn.record({ tool: call.name, outcome, summary: stepSummary(call, result, turn.input.sandbox) });
    return { callId: call.id, name: call.name, content: turn.budget.take(result), isError: !!result.isError };
  }

  private async invoke(call: ProposedCall, ctx: ToolContext): Promise<CallRecord> {
    try {
      return await this.registry.run(call.name, call.arguments, ctx);
    } catch (error) {
      // The Supervisor checked name and schema; the door checks again, and says so in the same words.
      if (error instanceof InvalidToolCall) return { result: errorResult(error.message), outcome: 'refused' };
      throw error;
    }
  }
}

/** The model's final text, with a note when its output limit cut it short (it is stored as it is). */
function answerOf(reply: ModelReply): string {
  if (reply.stop !== 'max_tokens') return reply.text;
  return `${reply.text}\n\n[The answer was cut at the model's output limit (agent.maxOutputTokens).]`;
}

/** What one turn has done so far. */
class TurnState {
  readonly steps: StepRecord[] = [];
  readonly usage: Usage = { inputTokens: 0, outputTokens: 0, modelCalls: 0 };
  readonly budget: OutputBudget;

  constructor(
    private readonly choice: ModelChoice,
    readonly input: TurnInput,
    limits: AgentLimits,
  ) {
    this.budget = new OutputBudget(limits.maxToolOutputBytes, limits.maxResultBytes);
  }

  count(reply: ModelReply): void {
    this.usage.modelCalls += 1;
    this.usage.inputTokens += reply.usage.inputTokens;
    this.usage.outputTokens += reply.usage.outputTokens;
  }

  record(step: StepRecord): void {
    this.steps.push(step);
    this.input.onStep?.(step, this.steps.length);
  }

  toolContext(signal: AbortSignal): ToolContext {
    const { principal, sandbox, logger, requestId, client } = this.input;
    return { principal, sandbox, signal, logger, requestId, ...(client !== undefined && { client }) };
  }

  finish(answer: string, limit?: TurnOutput['limit']): TurnOutput {
    return {
      answer,
      steps: this.steps,
      usage: this.usage,
      provider: this.choice.name,
      model: this.choice.model,
      ...(limit && { limit }),
    };
  }
}
