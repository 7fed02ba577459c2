import OpenAI from 'openai';
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

type Message = OpenAI.Chat.Completions.ChatCompletionMessageParam;
type Tool = OpenAI.Chat.Completions.ChatCompletionFunctionTool;

/** A backstop only: ResilientProvider sets the real per-attempt timeout through the signal. */
const SDK_TIMEOUT_MS = 10 * 60_000;

/** The SDK insists on a key; local servers (Ollama, vLLM, LM Studio) ignore whatever is sent. */
const NO_KEY = 'not-needed';

/** Chat Completions has no is_error on tool results: the model learns of a failure from the content. */
const TOOL_ERROR_PREFIX = 'Error: the tool call failed. ';

/**
 * OpenAI Chat Completions with function tools, or any server speaking it
 * (https://platform.openai.com/docs/api-reference/chat/create).
 */
export class OpenAIProvider implements ModelProvider {
  readonly name = 'openai';
  private readonly client: OpenAI;
  private readonly maxTokensField: 'max_completion_tokens' | 'max_tokens';
  private readonly toolCache = new WeakMap<ModelTool[], Tool[]>();

  constructor(options: { apiKey?: string; baseUrl?: string }) {
    this.client = new OpenAI({
      apiKey: options.apiKey ?? NO_KEY,
      // null, not undefined: config already read OPENAI_BASE_URL; the SDK must not read the env again.
      baseURL: options.baseUrl ?? null,
      // ResilientProvider owns retries (with the breaker and Retry-After); SDK retries would multiply them.
      maxRetries: 0,
      timeout: SDK_TIMEOUT_MS,
      // Set here so OPENAI_LOG cannot turn on the SDK's own logging, which prints request bodies (prompts, files).
      logLevel: 'off',
    });
    // OpenAI's reasoning models refuse the deprecated max_tokens; Ollama and other local servers only know it.
    this.maxTokensField = isOpenAIHost(options.baseUrl) ? 'max_completion_tokens' : 'max_tokens';
  }

  async complete(request: ModelRequest, signal: AbortSignal): Promise<ModelReply> {
    let completion: OpenAI.Chat.Completions.ChatCompletion;
    try {
      completion = await this.client.chat.completions.create(
        {
          model: request.model,
          [this.maxTokensField]: request.maxOutputTokens,
          messages: [{ role: 'system', content: request.system }, ...toOpenAIMessages(request.messages)],
          ...(request.tools.length > 0 ? { tools: this.tools(request.tools) } : {}),
        },
        { signal },
      );
    } catch (error) {
      throw providerFailure(this.name, error, signal, OpenAI);
    }
    return fromCompletion(completion);
  }

  private tools(tools: ModelTool[]): Tool[] {
    let translated = this.toolCache.get(tools);
    if (!translated) {
      translated = tools.map((tool) => ({
        type: 'function' as const,
        function: { name: tool.name, description: tool.description, parameters: tool.inputSchema },
      }));
      this.toolCache.set(tools, translated);
    }
    return translated;
  }
}

function isOpenAIHost(baseUrl: string | undefined): boolean {
  if (!baseUrl) return true;
  try {
    return new URL(baseUrl).hostname === 'api.openai.com';
  } catch {
    return false;
  }
}

function toOpenAIMessages(messages: ModelMessage[]): Message[] {
  return messages.flatMap((message): Message[] => {
    switch (message.role) {
      case 'user':
        return [{ role: 'user', content: message.text }];
      case 'assistant':
        return [
          {
            role: 'assistant',
            // With tool calls and no text, content is null rather than an empty string (the API's own shape).
            content: message.text || (message.calls.length > 0 ? null : ''),
            ...(message.calls.length > 0
              ? {
                  tool_calls: message.calls.map((call) => ({
                    id: call.id,
                    type: 'function' as const,
                    function: {
                      name: call.name,
                      arguments:
                        typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
                    },
                  })),
                }
              : {}),
          },
        ];
      case 'tool':
        return message.results.map((result) => ({
          role: 'tool' as const,
          tool_call_id: result.callId,
          content: result.isError ? TOOL_ERROR_PREFIX + result.content : result.content,
        }));
    }
  });
}

function fromCompletion(completion: OpenAI.Chat.Completions.ChatCompletion): ModelReply {
  const choice = completion.choices?.[0];
  if (!choice?.message)
    throw new ProviderError('provider_unavailable', 'The openai API returned a reply with no choices.', {
      provider: 'openai',
    });
  const calls: ProposedCall[] = (choice.message.tool_calls ?? []).flatMap((call) =>
    // Only function tools are declared; custom (free-form) tool calls cannot be meant for Bastion.
    call.type === 'function'
      ? [{ id: call.id, name: call.function.name, arguments: parseArguments(call.function.arguments) }]
      : [],
  );
  return {
    text: choice.message.content ?? '',
    calls,
    // Some local servers send no usage at all.
    usage: {
      inputTokens: completion.usage?.prompt_tokens ?? 0,
      outputTokens: completion.usage?.completion_tokens ?? 0,
    },
    stop: toStop(choice.finish_reason, calls.length > 0),
  };
}

/** Arguments arrive as a JSON string; a string that is not a JSON object goes on as it came. */
function parseArguments(raw: string): unknown {
  // Some local servers send "" for a call without arguments.
  if (raw.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : raw;
  } catch {
    return raw;
  }
}

function toStop(reason: string | null | undefined, hasCalls: boolean): ModelReply['stop'] {
  switch (reason) {
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    // Some OpenAI-compatible servers (older Ollama) report "stop" on a reply that calls tools.
    case 'stop':
      return hasCalls ? 'tool_use' : 'end';
    case 'length':
      return 'max_tokens';
    default:
      return 'other';
  }
}
