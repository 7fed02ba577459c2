/**
 * The edge between the SecureAgent and a language model. Messages are provider-neutral; each provider
 * translates them to its wire format (Anthropic Messages, OpenAI Chat Completions) and back.
 */

/** A tool as the model is told about it. */
export interface ModelTool {
  name: string;
  description: string;
  /** JSON Schema of the arguments. */
  inputSchema: Record<string, unknown>;
}

/** A step the model proposes: call `name` with `arguments`. */
export interface ProposedCall {
  /** The provider's id for the call, echoed back with its result. */
  id: string;
  name: string;
  /** Parsed arguments; a string the provider could not parse as a JSON object is passed on as it came. */
  arguments: unknown;
}

/** The result of one proposed call, fed back to the model as data. */
export interface CallResult {
  callId: string;
  name: string;
  content: string;
  isError: boolean;
}

export type ModelMessage =
  | { role: 'user'; text: string }
  | { role: 'assistant'; text: string; calls: ProposedCall[] }
  | { role: 'tool'; results: CallResult[] };

export interface ModelRequest {
  model: string;
  system: string;
  messages: ModelMessage[];
  tools: ModelTool[];
  maxOutputTokens: number;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface ModelReply {
  /** The model's text (the answer when there are no calls). */
  text: string;
  calls: ProposedCall[];
  usage: TokenUsage;
  /** Why the model stopped: finished, wants tools, ran out of output tokens, or anything else. */
  stop: 'end' | 'tool_use' | 'max_tokens' | 'other';
}

/** One model endpoint. Implementations throw ProviderError for every failure they can classify. */
export interface ModelProvider {
  /** `rules`, `anthropic` or `openai`: a metrics label and what diagnostics shows. */
  readonly name: string;
  complete(request: ModelRequest, signal: AbortSignal): Promise<ModelReply>;
}
