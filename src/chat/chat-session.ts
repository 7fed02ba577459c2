import {
  Client,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  StreamableHTTPClientTransport,
} from '@modelcontextprotocol/client';
import type { ConverseAnswer } from '../agent/agent.service.js';
import type { StepRecord } from '../conversations/conversation.js';
import { VERSION } from '../mcp/server-info.js';

/** One step of a turn, as the `converse` tool and /v1 report it. */
export type ChatStep = StepRecord;

/** The `converse` tool's structured result. */
export type ChatAnswer = ConverseAnswer;

/** GET /v1/conversations/{id}. */
export interface ChatHistory {
  id: string;
  readOnly: boolean;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  turnCount: number;
  turns: Array<{
    seq: number;
    prompt: string;
    answer: string;
    steps: ChatStep[];
    provider: string;
    model: string;
    at: string;
  }>;
}

/**
 * Why a chat request failed. `unreachable` ends the session (nothing else can work); the others are reported
 * and the session goes on.
 */
export type ChatFailure = 'unreachable' | 'unauthorized' | 'refused' | 'failed' | 'cancelled';

export class ChatError extends Error {
  constructor(
    readonly kind: ChatFailure,
    message: string,
  ) {
    super(message);
    this.name = 'ChatError';
  }
}

export interface ChatSessionOptions {
  /** The server's MCP endpoint. */
  url: URL;
  /** Sent as `Authorization: Bearer`. */
  key?: string;
  /** A conversation to continue. */
  conversationId?: string;
  /** Conversations this session starts are read-only. */
  readOnly?: boolean;
}

/** A model turn may run for minutes; each step's progress notification restarts the clock. */
const TURN_TIMEOUT_MS = 300_000;

/** Network failures that mean no server is listening at the URL. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * A conversation with a running Bastion server: prompts go to the `converse` tool over MCP (with progress, so
 * steps arrive as they happen); history and export come from the REST API on the same origin.
 */
export class ChatSession {
  private readonly client = new Client(
    { name: 'bastion-chat', version: VERSION },
    { versionNegotiation: { mode: 'auto' } },
  );
  private readonly rest: URL;
  private conversation: string | undefined;

  constructor(private readonly options: ChatSessionOptions) {
    this.rest = restBase(options.url);
    this.conversation = options.conversationId;
  }

  /** The conversation prompts continue, once the server has given one. */
  get conversationId(): string | undefined {
    return this.conversation;
  }

  async connect(): Promise<void> {
    const headers = this.headers();
    try {
      await this.client.connect(
        new StreamableHTTPClientTransport(this.options.url, { requestInit: { headers } }),
      );
    } catch (error) {
      throw this.failure(error);
    }
  }

  /** One prompt; `onStep` is called as each step of the agent completes, before the answer arrives. */
  async converse(
    prompt: string,
    onStep: (step: { progress: number; message?: string }) => void,
    signal?: AbortSignal,
  ): Promise<ChatAnswer> {
    const args: Record<string, unknown> = { prompt };
    if (this.conversation) args.conversation_id = this.conversation;
    else if (this.options.readOnly) args.read_only = true;
    let result: Awaited<ReturnType<Client['callTool']>>;
    try {
      result = await this.client.callTool(
        { name: 'converse', arguments: args },
        {
          onprogress: onStep,
          timeout: TURN_TIMEOUT_MS,
          resetTimeoutOnProgress: true,
          ...(signal && { signal }),
        },
      );
    } catch (error) {
      throw this.failure(error, signal);
    }
    const content = (result.content ?? []) as Array<{ type: string; text?: string }>;
    if (result.isError) {
      const text = content.map((block) => block.text ?? '').join('\n');
      throw new ChatError('refused', text || 'The server refused the prompt.');
    }
    const answer = result.structuredContent as ChatAnswer | undefined;
    if (!answer || typeof answer.conversation_id !== 'string')
      throw new ChatError('failed', 'The server answered without a conversation (is it a Bastion server?).');
    this.conversation = answer.conversation_id;
    return answer;
  }

  /** The next prompt starts a new conversation. */
  forget(): void {
    this.conversation = undefined;
  }

  history(): Promise<ChatHistory> {
    return this.get(this.current()) as Promise<ChatHistory>;
  }

  /** The export document, as the server sent it. */
  export(): Promise<unknown> {
    return this.get(`${this.current()}/export`);
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }

  private current(): string {
    if (!this.conversation) throw new ChatError('refused', 'No conversation yet: send a prompt first.');
    return encodeURIComponent(this.conversation);
  }

  private headers(): Record<string, string> {
    return this.options.key ? { authorization: `Bearer ${this.options.key}` } : {};
  }

  private async get(relative: string): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(new URL(relative, this.rest), {
        headers: { ...this.headers(), accept: 'application/json' },
      });
    } catch (error) {
      throw this.failure(error);
    }
    if (response.status === 401) throw this.unauthorized();
    if (!response.ok) {
      // /v1 errors are application/problem+json (RFC 9457).
      const problem = (await response.json().catch(() => undefined)) as { detail?: unknown } | undefined;
      const detail = typeof problem?.detail === 'string' ? problem.detail : response.statusText;
      throw new ChatError('refused', `${detail} (HTTP ${response.status})`);
    }
    return response.json();
  }

  /** Maps what the SDK or fetch threw to a one-line, actionable message. */
  private failure(error: unknown, signal?: AbortSignal): ChatError {
    if (error instanceof ChatError) return error;
    if (signal?.aborted) return new ChatError('cancelled', 'Cancelled.');
    const network = networkCode(error);
    if (network && UNREACHABLE_CODES.has(network))
      return new ChatError(
        'unreachable',
        `No server answers at ${displayUrl(this.options.url)} (${network}). Start one with "bastion serve", or pass --url.`,
      );
    if (error instanceof SdkHttpError && error.status === 401) return this.unauthorized();
    if (error instanceof SdkHttpError && error.status === 403)
      return new ChatError('unauthorized', 'The server denied access with this key (HTTP 403).');
    if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout)
      return new ChatError('failed', 'The server took too long to answer.');
    if (error instanceof ProtocolError)
      return new ChatError('failed', `The server rejected the request: ${error.message}`);
    if (network)
      return new ChatError('failed', `The connection to ${this.options.url.host} failed (${network}).`);
    return new ChatError('failed', describe(error));
  }

  private unauthorized(): ChatError {
    return new ChatError(
      'unauthorized',
      this.options.key
        ? 'The server refused the API key (HTTP 401). Pass a valid key with --key or BASTION_API_KEY ' +
            '(an admin creates one with "bastion keys create --client <name> --scopes files:read,agent").'
        : 'The server requires an API key (HTTP 401). Pass one with --key <key> or BASTION_API_KEY.',
    );
  }
}

/** A URL for messages: without credentials or a query, which may hold secrets. */
export function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** /v1/conversations/ beside the MCP endpoint: same origin, and the same path prefix behind a proxy. */
export function restBase(mcpUrl: URL): URL {
  const prefix = mcpUrl.pathname.endsWith('/mcp') ? mcpUrl.pathname.slice(0, -'/mcp'.length) : '';
  return new URL(`${prefix}/v1/conversations/`, mcpUrl.origin);
}

/** An error and its causes, outermost first (fetch hides the reason in `cause`). */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e && chain.length < 5; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

/** The system error code (ECONNREFUSED, ...) in an error's cause chain: the SDK's own codes are not these. */
function networkCode(error: unknown): string | undefined {
  for (const e of causes(error)) {
    const { code, syscall } = e as { code?: unknown; syscall?: unknown };
    if (typeof code === 'string' && (typeof syscall === 'string' || code.startsWith('UND_ERR'))) return code;
  }
  return undefined;
}

/** "fetch failed" says little: add the innermost reason. */
function describe(error: unknown): string {
  const messages = causes(error)
    .map((e) => (e instanceof Error ? e.message : String(e)))
    .filter((m, i, all) => m && all.indexOf(m) === i);
  const [outer, ...inner] = messages;
  return inner.length > 0 ? `${outer}: ${inner.at(-1)}` : (outer ?? 'Unknown error.');
}
