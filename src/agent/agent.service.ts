import type { Principal } from '../auth/principal.js';
import { BastionError } from '../common/bastion-error.js';
import type { ConversationsConfig } from '../config/config.schema.js';
import type { ConversationMeta, StepRecord } from '../conversations/conversation.js';
import { ConversationNotFound } from '../conversations/conversation.errors.js';
import type { ConversationStore } from '../conversations/conversation.store.js';
import type { AuditSink } from '../observability/audit-log.js';
import type { Metrics } from '../observability/metrics.js';
import type { ToolContext } from '../tools/tool.js';
import { ProviderError } from './providers/provider.errors.js';
import { TurnCancelled, type SecureAgent, type TurnOutput } from './secure-agent.js';

/** The prompt is empty or too long: nothing is stored. */
export class InvalidPrompt extends BastionError {
  constructor(message: string) {
    super('invalid_prompt', message);
  }
}

/** Who is prompting, and where: the same facts a tool call carries. */
export interface ConverseCaller extends Omit<ToolContext, 'progress'> {
  /** Told about each step as it is done. */
  onStep?: (step: StepRecord, index: number) => void;
}

export interface ConverseInput {
  prompt: string;
  /** Continue this conversation; a new one is started without it. */
  conversationId?: string;
  /** For a new conversation: the agent may not change files in it. */
  readOnly?: boolean;
}

/** The answer to one prompt, as `converse` and POST /v1/conversations/{id}/messages return it. */
export interface ConverseAnswer {
  conversation_id: string;
  answer: string;
  steps: StepRecord[];
  usage: {
    input_tokens: number;
    output_tokens: number;
    model_calls: number;
    provider: string;
    model: string;
  };
}

/**
 * One prompt, one turn: checks the prompt, finds (or starts) the caller's conversation, holds its turn lock,
 * runs the SecureAgent on its history, and stores the turn whole. A cancelled or failed turn stores nothing.
 */
export class AgentService {
  constructor(
    private readonly agent: SecureAgent,
    private readonly store: ConversationStore,
    private readonly settings: { maxPromptChars: number; workspaceReadOnly: boolean } & Pick<
      ConversationsConfig,
      'lockWaitMs'
    >,
    private readonly sinks: { audit: AuditSink; metrics: Metrics },
  ) {}

  /** Starts an empty conversation for the caller. */
  async start(principal: Principal, requestId: string, readOnly = false): Promise<ConversationMeta> {
    const conversation = await this.store.create({ owner: principal.id, readOnly });
    this.audit(principal, 'conversation.create', conversation.id, 'ok', requestId);
    return conversation;
  }

  async converse(caller: ConverseCaller, input: ConverseInput): Promise<ConverseAnswer> {
    const prompt = this.checkPrompt(input.prompt);
    const { principal } = caller;
    const conversation = input.conversationId
      ? await this.store.get(input.conversationId, principal.id)
      : await this.start(principal, caller.requestId, input.readOnly);
    if (!conversation) throw new ConversationNotFound();
    const started = performance.now();
    try {
      const turn = await this.store.withTurnLock(
        conversation.id,
        { waitMs: this.settings.lockWaitMs, signal: caller.signal },
        () => this.turn(caller, conversation, prompt),
      );
      this.count(turn.provider, turn.limit ? 'limit' : 'answered', started, turn);
      this.audit(principal, 'conversation.turn', conversation.id, 'ok', caller.requestId);
      return answerOf(conversation.id, turn);
    } catch (caught) {
      const error = caller.signal.aborted ? new TurnCancelled() : caught;
      const outcome = outcomeOf(error);
      const provider = this.agent.providerFor(principal, caller.client);
      this.sinks.metrics.agentTurns.inc({ provider, outcome });
      this.audit(principal, 'conversation.turn', conversation.id, outcome, caller.requestId, codeOf(error));
      // A conversation started by this prompt holds nothing when its first turn fails: it goes too.
      if (!input.conversationId) await this.store.delete(conversation.id, principal.id).catch(() => false);
      throw error;
    }
  }

  private async turn(
    caller: ConverseCaller,
    conversation: ConversationMeta,
    prompt: string,
  ): Promise<TurnOutput> {
    const { principal } = caller;
    const history = await this.store.turns(conversation.id, principal.id);
    if (!history) throw new ConversationNotFound();
    const output = await this.agent.runTurn({
      ...caller,
      conversationId: conversation.id,
      prompt,
      history,
      readOnly: conversation.readOnly || this.settings.workspaceReadOnly,
    });
    // Cancelled while the model answered: the turn is dropped, not half-kept.
    if (caller.signal.aborted) throw new TurnCancelled();
    const stored = await this.store.appendTurn(conversation.id, principal.id, {
      prompt,
      answer: output.answer,
      steps: output.steps,
      usage: output.usage,
      provider: output.provider,
      model: output.model,
      at: new Date().toISOString(),
    });
    if (!stored) throw new ConversationNotFound();
    return output;
  }

  private checkPrompt(prompt: string): string {
    if (typeof prompt !== 'string' || prompt.trim() === '')
      throw new InvalidPrompt('The prompt is empty: say what you would like done.');
    if (prompt.length > this.settings.maxPromptChars)
      throw new InvalidPrompt(
        `The prompt is ${prompt.length} characters; the limit is ${this.settings.maxPromptChars}.`,
      );
    return prompt;
  }

  private count(provider: string, outcome: string, started: number, turn: TurnOutput): void {
    const { metrics } = this.sinks;
    metrics.agentTurns.inc({ provider, outcome });
    metrics.agentTurnDuration.observe({ provider }, (performance.now() - started) / 1000);
    metrics.agentTokens.inc({ provider, direction: 'input' }, turn.usage.inputTokens);
    metrics.agentTokens.inc({ provider, direction: 'output' }, turn.usage.outputTokens);
  }

  private audit(
    principal: Principal,
    action: string,
    conversationId: string,
    outcome: string,
    requestId: string,
    code?: string,
  ): void {
    this.sinks.audit.record({
      kind: 'conversation',
      actor: principal.id,
      action,
      target: conversationId,
      outcome,
      requestId,
      ...(code !== undefined && { code }),
    });
  }
}

function answerOf(conversationId: string, turn: TurnOutput): ConverseAnswer {
  return {
    conversation_id: conversationId,
    answer: turn.answer,
    steps: turn.steps,
    usage: {
      input_tokens: turn.usage.inputTokens,
      output_tokens: turn.usage.outputTokens,
      model_calls: turn.usage.modelCalls,
      provider: turn.provider,
      model: turn.model,
    },
  };
}

function outcomeOf(error: unknown): string {
  if (error instanceof TurnCancelled) return 'cancelled';
  if (error instanceof ProviderError) return 'provider_error';
  if (error instanceof BastionError) return 'refused';
  return 'error';
}

function codeOf(error: unknown): string {
  return error instanceof BastionError ? error.code : 'internal';
}
