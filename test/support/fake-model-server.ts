/**
 * A scripted model server speaking the Anthropic Messages or the OpenAI Chat Completions wire format, for
 * tests that run the real SDKs (through Bastion's providers) without the network.
 *
 *   const fake = await FakeModelServer.start('anthropic');
 *   fake.enqueue(fake.wire.toolUse([{ name: 'list_directory', input: { path: '.' } }]), fake.wire.text('Done.'));
 *   const provider = new AnthropicProvider({ apiKey: 'sk-test', baseUrl: fake.baseUrl });
 *   ...
 *   expect(fake.requests[0].body.system).toBe('...');
 *   expect(fake.view(1).toolResults).toEqual([...]); // the same shape for both formats
 *   await fake.close();
 *
 * Each request takes the next scripted response; with none left the server answers 500 with an error naming
 * the problem. Every request is recorded (method, path, headers, parsed body, arrival time), and so is a
 * client that gives up before its answer; `until` waits for either, so a test waits for the event itself:
 *
 *   await fake.until(() => fake.requests.length === 2); // the second request has arrived
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type WireFormat = 'anthropic' | 'openai';

/** One scripted HTTP response. */
export interface ScriptedResponse {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
  /** Wait this long before answering (a slow model, for timeouts). */
  delayMs?: number;
  /** Answer only once this settles: a model that thinks until the test says so. */
  heldUntil?: Promise<unknown>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (undefined when it was not JSON). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests dig into wire bodies freely
  body: any;
  /** performance.now() when the request arrived, to check waits between attempts. */
  at: number;
  /** The client closed the connection before the answer was sent (a timeout, a cancelled turn). */
  abandoned: boolean;
}

/** A tool call the fake model makes. `input` as a string is sent raw (OpenAI arguments that are not JSON). */
export interface FakeCall {
  id?: string;
  name: string;
  input: Record<string, unknown> | string;
}

export interface FakeUsage {
  input: number;
  output: number;
}

/** A failure, each rendered with the status and error body the real API uses for it. */
export type FakeErrorKind =
  | 'rate_limited' // 429
  | 'overloaded' // Anthropic 529 overloaded_error, OpenAI 503
  | 'server_error' // 500
  | 'auth' // 401
  | 'bad_request' // 400
  | 'context_too_long'; // 400 with the provider's own wording

export interface ErrorOptions {
  /** The error text in the body (each kind has a realistic default). */
  message?: string;
  headers?: Record<string, string>;
}

/** Builders for the responses of one wire format. */
export interface Wire {
  readonly format: WireFormat;
  /** A final answer: `end_turn` / `stop`. */
  text(text: string, options?: { usage?: FakeUsage; stop?: string }): ScriptedResponse;
  /** A reply calling tools, with optional text before the calls: `tool_use` / `tool_calls`. */
  toolUse(calls: FakeCall[], options?: { text?: string; usage?: FakeUsage }): ScriptedResponse;
  error(kind: FakeErrorKind, options?: ErrorOptions): ScriptedResponse;
}

const DEFAULT_USAGE: FakeUsage = { input: 10, output: 5 };
let seq = 0;
const nextId = (prefix: string) => `${prefix}${++seq}`;

/** Anthropic Messages API (https://docs.anthropic.com/en/api/messages, /en/api/errors). */
export const anthropicWire: Wire = {
  format: 'anthropic',
  text: (text, options = {}) =>
    anthropicMessage([{ type: 'text', text }], options.stop ?? 'end_turn', options.usage),
  toolUse: (calls, options = {}) =>
    anthropicMessage(
      [
        ...(options.text ? [{ type: 'text', text: options.text }] : []),
        ...calls.map((call) => ({
          type: 'tool_use',
          id: call.id ?? nextId('toolu_fake_'),
          name: call.name,
          input: call.input,
        })),
      ],
      'tool_use',
      options.usage,
    ),
  error: (kind, options = {}) => {
    const [status, type, message] = {
      rate_limited: [
        429,
        'rate_limit_error',
        'Number of request tokens has exceeded your per-minute rate limit',
      ],
      overloaded: [529, 'overloaded_error', 'Overloaded'],
      server_error: [500, 'api_error', 'Internal server error'],
      auth: [401, 'authentication_error', 'invalid x-api-key'],
      bad_request: [400, 'invalid_request_error', 'messages: field required'],
      context_too_long: [400, 'invalid_request_error', 'prompt is too long: 208310 tokens > 200000 maximum'],
    }[kind] as [number, string, string];
    return {
      status,
      headers: { 'request-id': nextId('req_fake_'), ...options.headers },
      body: { type: 'error', error: { type, message: options.message ?? message } },
    };
  },
};

function anthropicMessage(content: unknown[], stopReason: string, usage = DEFAULT_USAGE): ScriptedResponse {
  return {
    status: 200,
    headers: { 'request-id': nextId('req_fake_') },
    body: {
      id: nextId('msg_fake_'),
      type: 'message',
      role: 'assistant',
      model: 'claude-fake',
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: { input_tokens: usage.input, output_tokens: usage.output },
    },
  };
}

/** OpenAI Chat Completions (https://platform.openai.com/docs/api-reference/chat/object). */
export const openaiWire: Wire = {
  format: 'openai',
  text: (text, options = {}) =>
    openaiCompletion({ role: 'assistant', content: text }, options.stop ?? 'stop', options.usage),
  toolUse: (calls, options = {}) =>
    openaiCompletion(
      {
        role: 'assistant',
        content: options.text ?? null,
        tool_calls: calls.map((call) => ({
          id: call.id ?? nextId('call_fake_'),
          type: 'function',
          function: {
            name: call.name,
            arguments: typeof call.input === 'string' ? call.input : JSON.stringify(call.input),
          },
        })),
      },
      'tool_calls',
      options.usage,
    ),
  error: (kind, options = {}) => {
    const [status, type, code, message] = {
      rate_limited: [429, 'requests', 'rate_limit_exceeded', 'Rate limit reached for requests'],
      overloaded: [503, 'server_error', null, 'The server is overloaded or not ready yet.'],
      server_error: [500, 'server_error', null, 'The server had an error while processing your request.'],
      auth: [
        401,
        'invalid_request_error',
        'invalid_api_key',
        'Incorrect API key provided: sk-test-****LEAK.',
      ],
      bad_request: [400, 'invalid_request_error', null, "Invalid value for 'messages'."],
      context_too_long: [
        400,
        'invalid_request_error',
        'context_length_exceeded',
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens.",
      ],
    }[kind] as [number, string, string | null, string];
    return {
      status,
      headers: { 'x-request-id': nextId('req_fake_'), ...options.headers },
      body: { error: { message: options.message ?? message, type, param: null, code } },
    };
  },
};

function openaiCompletion(message: unknown, finishReason: string, usage = DEFAULT_USAGE): ScriptedResponse {
  return {
    status: 200,
    headers: { 'x-request-id': nextId('req_fake_') },
    body: {
      id: nextId('chatcmpl-fake-'),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: 'gpt-fake',
      choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
      usage: {
        prompt_tokens: usage.input,
        completion_tokens: usage.output,
        total_tokens: usage.input + usage.output,
      },
    },
  };
}

const ROUTES: Record<WireFormat, { path: string; wire: Wire; apiPrefix: string }> = {
  anthropic: { path: '/v1/messages', wire: anthropicWire, apiPrefix: '' },
  openai: { path: '/v1/chat/completions', wire: openaiWire, apiPrefix: '/v1' },
};

export class FakeModelServer {
  /** Every request received, in order. */
  readonly requests: RecordedRequest[] = [];
  /** The response builders for this server's format. */
  readonly wire: Wire;
  private readonly queue: ScriptedResponse[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly waiters = new Set<() => void>();

  private readonly server: Server;
  private url = '';

  private constructor(readonly format: WireFormat) {
    this.wire = ROUTES[format].wire;
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () =>
        this.handle(req.method ?? '', req.url ?? '', req.headers, Buffer.concat(chunks), res),
      );
    });
  }

  /** Listens on 127.0.0.1 on an ephemeral port. */
  static async start(format: WireFormat): Promise<FakeModelServer> {
    const fake = new FakeModelServer(format);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    const { port } = fake.server.address() as AddressInfo;
    fake.url = `http://127.0.0.1:${port}${ROUTES[format].apiPrefix}`;
    return fake;
  }

  /** What the provider takes as `baseUrl` (the SDKs append `/v1/messages` or `/chat/completions`). */
  get baseUrl(): string {
    return this.url;
  }

  /** Adds responses to the script, answered in order. */
  enqueue(...responses: ScriptedResponse[]): this {
    this.queue.push(...responses);
    return this;
  }

  /** Scripted responses not yet used. */
  get pending(): number {
    return this.queue.length;
  }

  /** Request `index` (0-based) as the model saw it: system prompt, tools, user text, tool results. */
  view(index: number): WireView {
    const recorded = this.requests[index];
    if (!recorded)
      throw new Error(`fake ${this.format} server: no request ${index} (${this.requests.length} seen)`);
    return viewRequest(this.format, recorded.body);
  }

  /**
   * Resolves once `condition` holds: checked now, and again whenever a request arrives or a client gives one
   * up. No timeout of its own: the test's timeout bounds the wait.
   */
  until(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!condition()) return;
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  /** Forgets recorded requests and unused responses (between tests sharing one server). */
  reset(): void {
    this.requests.length = 0;
    this.queue.length = 0;
  }

  /** Stops listening and ends open (keep-alive or delayed) connections. */
  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private handle(
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    raw: Buffer,
    res: ServerResponse,
  ) {
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      body = undefined;
    }
    const recorded: RecordedRequest = {
      method,
      path,
      headers,
      body,
      at: performance.now(),
      abandoned: false,
    };
    this.requests.push(recorded);
    res.on('close', () => {
      if (res.writableFinished) return;
      recorded.abandoned = true;
      this.changed();
    });
    this.changed();

    const expected = ROUTES[this.format].path;
    const scripted =
      method !== 'POST' || path.split('?')[0] !== expected
        ? this.wireError(404, `fake ${this.format} server: no route ${method} ${path}`)
        : (this.queue.shift() ??
          this.wireError(500, `fake ${this.format} server: no scripted response left`));

    const send = () => {
      if (res.destroyed) return;
      res.writeHead(scripted.status, { 'content-type': 'application/json', ...scripted.headers });
      res.end(JSON.stringify(scripted.body));
    };
    if (scripted.heldUntil) return void scripted.heldUntil.then(send, send);
    if (!scripted.delayMs) return send();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      send();
    }, scripted.delayMs);
    this.timers.add(timer);
    // A client that gives up (timeout, abort) closes the socket: drop the pending answer.
    res.on('close', () => {
      clearTimeout(timer);
      this.timers.delete(timer);
    });
  }

  private changed(): void {
    for (const check of [...this.waiters]) check();
  }

  private wireError(status: number, message: string): ScriptedResponse {
    return this.format === 'anthropic'
      ? { status, body: { type: 'error', error: { type: 'api_error', message } } }
      : { status, body: { error: { message, type: 'server_error', param: null, code: null } } };
  }
}

/** A tool result as a request carried it back to the model. */
export interface WireToolResult {
  callId: string;
  content: string;
  /** Anthropic's is_error; Chat Completions has no such field (undefined). */
  isError?: boolean;
}

/** What one recorded request told the model, whatever its wire format. */
export interface WireView {
  system: string;
  /** The names of the tools offered. */
  tools: string[];
  /** Text in user turns: the prompt and earlier prompts (never tool results). */
  userTexts: string[];
  /** Text in assistant turns: earlier answers and text sent with calls. */
  assistantTexts: string[];
  toolResults: WireToolResult[];
}

/** Reads a recorded request body of either format into one shape, for assertions on what reached the model. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire bodies are untyped JSON
export function viewRequest(format: WireFormat, body: any): WireView {
  const view: WireView = { system: '', tools: [], userTexts: [], assistantTexts: [], toolResults: [] };
  const texts = (role: string) => (role === 'assistant' ? view.assistantTexts : view.userTexts);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
  const tools: any[] = body?.tools ?? [];
  if (format === 'anthropic') {
    view.system = typeof body.system === 'string' ? body.system : JSON.stringify(body.system ?? '');
    view.tools = tools.map((tool) => String(tool.name));
    for (const message of body.messages ?? []) {
      const blocks =
        typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : message.content;
      for (const block of blocks) {
        if (block.type === 'text') texts(message.role).push(block.text);
        if (block.type === 'tool_result')
          view.toolResults.push({
            callId: block.tool_use_id,
            content: typeof block.content === 'string' ? block.content : JSON.stringify(block.content),
            isError: block.is_error,
          });
      }
    }
    return view;
  }
  view.tools = tools.map((tool) => String(tool.function?.name));
  for (const message of body.messages ?? []) {
    const content = typeof message.content === 'string' ? message.content : '';
    if (message.role === 'system') view.system += content;
    else if (message.role === 'tool') view.toolResults.push({ callId: message.tool_call_id, content });
    else if (content) texts(message.role).push(content);
  }
  return view;
}
