import Anthropic from '@anthropic-ai/sdk';
import type {
  ModelMessage,
  ModelProvider,
  ModelReply,
  ModelRequest,
  ModelTool,
  ProposedCall,
} from '../model-provider.js';
import { providerFailure } from './provider-failure.js';
import { ProviderError } from './provider.errors.js';

/**
 * A backstop only: ResilientProvider sets the real per-attempt timeout through the signal. Setting one also
 * stops the SDK refusing non-streaming requests whose max_tokens it guesses would take over 10 minutes.
 */
const SDK_TIMEOUT_MS = 10 * 60_000;

type Block = Anthropic.ContentBlockParam;

/** The Anthropic Messages API with client tools (https://docs.anthropic.com/en/api/messages). */
export class AnthropicProvider implements ModelProvider {
  readonly name = 'anthropic';
  private readonly client: Anthropic;
  /** Tool lists are usually the same array on every request of a turn: translate each once. */
  private readonly toolCache = new WeakMap<ModelTool[], Anthropic.Tool[]>();

  constructor(options: { apiKey: string; baseUrl?: string }) {
    this.client = new Anthropic({
      apiKey: options.apiKey,
      // null, not undefined: config already read ANTHROPIC_BASE_URL; the SDK must not read the env again.
      baseURL: options.baseUrl ?? null,
      // ResilientProvider owns retries (with the breaker and Retry-After); SDK retries would multiply them.
      maxRetries: 0,
      timeout: SDK_TIMEOUT_MS,
      // Set here so ANTHROPIC_LOG cannot turn on the SDK's own logging, which prints request bodies (prompts, files).
      logLevel: 'off',
    });
  }

  async complete(request: ModelRequest, signal: AbortSignal): Promise<ModelReply> {
    let message: Anthropic.Message;
    try {
      message = await this.client.messages.create(
        {
          model: request.model,
          max_tokens: request.maxOutputTokens,
          system: request.system,
          messages: toAnthropicMessages(request.messages),
          ...(request.tools.length > 0 ? { tools: this.tools(request.tools) } : {}),
        },
        { signal },
      );
    } catch (error) {
      throw providerFailure(this.name, error, signal, Anthropic);
    }
    return fromAnthropicMessage(message);
  }

  private tools(tools: ModelTool[]): Anthropic.Tool[] {
    let translated = this.toolCache.get(tools);
    if (!translated) {
      translated = tools.map((tool) => ({
        name: tool.name,
        description: tool.description,
        input_schema: tool.inputSchema as Anthropic.Tool.InputSchema,
      }));
      this.toolCache.set(tools, translated);
    }
    return translated;
  }
}

/**
 * Neutral messages to Anthropic turns. Tool results travel as `tool_result` blocks in a user turn, and the
 * API wants user and assistant turns to alternate, so consecutive turns of one role are merged (results
 * first, as the API requires them to lead the turn that follows the tool_use).
 */
function toAnthropicMessages(messages: ModelMessage[]): Anthropic.MessageParam[] {
  const out: { role: 'user' | 'assistant'; content: Block[] }[] = [];
  for (const message of messages) {
    const role = message.role === 'assistant' ? 'assistant' : 'user';
    const blocks = toBlocks(message);
    // The API rejects empty turns and empty text blocks.
    if (blocks.length === 0) continue;
    const last = out.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  }
  return out;
}

function toBlocks(message: ModelMessage): Block[] {
  switch (message.role) {
    case 'user':
      return message.text ? [{ type: 'text', text: message.text }] : [];
    case 'assistant':
      return [
        ...(message.text ? [{ type: 'text' as const, text: message.text }] : []),
        ...message.calls.map((call) => ({
          type: 'tool_use' as const,
          id: call.id,
          name: call.name,
          input: asInputObject(call.arguments),
        })),
      ];
    case 'tool':
      return message.results.map((result) => ({
        type: 'tool_result' as const,
        tool_use_id: result.callId,
        content: result.content,
        is_error: result.isError,
      }));
  }
}

/** `tool_use.input` must be an object; arguments another provider could not parse came as a raw string. */
function asInputObject(args: unknown): Record<string, unknown> {
  return typeof args === 'object' && args !== null && !Array.isArray(args)
    ? (args as Record<string, unknown>)
    : { arguments: args };
}

function fromAnthropicMessage(message: Anthropic.Message): ModelReply {
  if (!Array.isArray(message.content))
    throw new ProviderError(
      'provider_unavailable',
      'The anthropic API returned a reply Bastion cannot read.',
      {
        provider: 'anthropic',
      },
    );
  const text: string[] = [];
  const calls: ProposedCall[] = [];
  for (const block of message.content) {
    if (block.type === 'text') text.push(block.text);
    else if (block.type === 'tool_use')
      calls.push({ id: block.id, name: block.name, arguments: block.input });
    // Thinking and server-tool blocks are not requested and carry nothing the agent acts on.
  }
  return {
    // Text blocks are fragments of one answer (citations split them), so they join without a separator.
    text: text.join(''),
    calls,
    usage: {
      inputTokens: message.usage?.input_tokens ?? 0,
      outputTokens: message.usage?.output_tokens ?? 0,
    },
    stop: toStop(message.stop_reason),
  };
}

function toStop(reason: Anthropic.StopReason | null): ModelReply['stop'] {
  switch (reason) {
    case 'end_turn':
      return 'end';
    case 'tool_use':
      return 'tool_use';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'max_tokens';
    default:
      return 'other';
  }
}
