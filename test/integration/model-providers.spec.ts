/**
 * The Anthropic and OpenAI providers, through the real SDKs, against local servers speaking each wire
 * format; and ResilientProvider's retries, timeouts and circuit breaker around them. The waits those impose
 * (Retry-After, per-attempt timeouts, the breaker's pause) run on Jest's fake clock while the HTTP stays
 * real: each is checked to the millisecond, and none is waited for. Other retries back off for the few ms
 * of FAST.retryBaseMs on the real clock.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type {
  CallResult,
  ModelMessage,
  ModelProvider,
  ModelReply,
  ModelTool,
} from '../../src/agent/model-provider.js';
import { AnthropicProvider } from '../../src/agent/providers/anthropic.provider.js';
import { OpenAIProvider } from '../../src/agent/providers/openai.provider.js';
import { ProviderError } from '../../src/agent/providers/provider.errors.js';
import { ResilientProvider, type ResilienceOptions } from '../../src/agent/providers/resilient-provider.js';
import type { CircuitStateName } from '../../src/common/circuit-state.js';
import { track, untilReal, useFakeClock } from '../support/fake-clock.js';
import { FakeModelServer, type WireFormat } from '../support/fake-model-server.js';

const KEY = 'sk-test-key-0123';
const LEAKY =
  'Incorrect API key provided: sk-test-LEAK. You can find your API key at https://example.invalid.';
const SYSTEM = 'You are Bastion. Use the workspace tools.';
const TOOLS: ModelTool[] = [
  {
    name: 'list_directory',
    description: 'List a directory of the workspace.',
    inputSchema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
  },
  {
    name: 'read_text_file',
    description: 'Read a text file of the workspace.',
    inputSchema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
  },
];
const FAST: ResilienceOptions = {
  timeoutMs: 2_000,
  retries: 2,
  retryBaseMs: 10,
  retryMaxMs: 2_000,
  breakerFailures: 5,
  breakerHalfOpenMs: 200,
};

interface Subject {
  format: WireFormat;
  model: string;
  keyVar: string;
  make(baseUrl: string): ModelProvider;
  /** The call ids the fake uses in the scripted flow. */
  ids: [string, string, string];
  /** The conversation as the third request of the flow must carry it on the wire. */
  expectedWire(ids: [string, string, string]): Record<string, unknown>;
}

// Wire shapes of the scripted flow's calls and results.
const toolUse = (id: string, name: string, path: string) => ({ type: 'tool_use', id, name, input: { path } });
const toolResult = (id: string, content: string, isError: boolean) => ({
  type: 'tool_result',
  tool_use_id: id,
  content,
  is_error: isError,
});
const fnCall = (id: string, name: string, path: string) => ({
  id,
  type: 'function',
  function: { name, arguments: JSON.stringify({ path }) },
});

const anthropic: Subject = {
  format: 'anthropic',
  model: 'claude-fake',
  keyVar: 'ANTHROPIC_API_KEY',
  make: (baseUrl) => new AnthropicProvider({ apiKey: KEY, baseUrl }),
  ids: ['toolu_01', 'toolu_02', 'toolu_03'],
  expectedWire: ([a, b, c]) => ({
    model: 'claude-fake',
    max_tokens: 1024,
    system: SYSTEM,
    tools: TOOLS.map((t) => ({ name: t.name, description: t.description, input_schema: t.inputSchema })),
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'What do the notes say?' }] },
      { role: 'assistant', content: [toolUse(a, 'list_directory', '.')] },
      { role: 'user', content: [toolResult(a, 'notes.txt\nsrc/', false)] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Reading both.' },
          toolUse(b, 'read_text_file', 'notes.txt'),
          toolUse(c, 'read_text_file', 'notes.md'),
        ],
      },
      {
        role: 'user',
        content: [toolResult(b, 'buy milk', false), toolResult(c, 'No such file: notes.md', true)],
      },
    ],
  }),
};

const openai: Subject = {
  format: 'openai',
  model: 'gpt-fake',
  keyVar: 'OPENAI_API_KEY',
  make: (baseUrl) => new OpenAIProvider({ apiKey: KEY, baseUrl }),
  ids: ['call_01', 'call_02', 'call_03'],
  expectedWire: ([a, b, c]) => ({
    model: 'gpt-fake',
    // A local base URL gets max_tokens (what Ollama knows), not max_completion_tokens.
    max_tokens: 1024,
    tools: TOOLS.map((t) => ({
      type: 'function',
      function: { name: t.name, description: t.description, parameters: t.inputSchema },
    })),
    messages: [
      { role: 'system', content: SYSTEM },
      { role: 'user', content: 'What do the notes say?' },
      { role: 'assistant', content: null, tool_calls: [fnCall(a, 'list_directory', '.')] },
      { role: 'tool', tool_call_id: a, content: 'notes.txt\nsrc/' },
      {
        role: 'assistant',
        content: 'Reading both.',
        tool_calls: [fnCall(b, 'read_text_file', 'notes.txt'), fnCall(c, 'read_text_file', 'notes.md')],
      },
      { role: 'tool', tool_call_id: b, content: 'buy milk' },
      { role: 'tool', tool_call_id: c, content: 'Error: the tool call failed. No such file: notes.md' },
    ],
  }),
};

/** The workspace the fake model explores: notes.md is missing, so that result is an error. */
function runTool(call: { id: string; name: string; arguments: unknown }): CallResult {
  const path = (call.arguments as { path: string }).path;
  if (call.name === 'list_directory')
    return { callId: call.id, name: call.name, content: 'notes.txt\nsrc/', isError: false };
  if (path === 'notes.txt') return { callId: call.id, name: call.name, content: 'buy milk', isError: false };
  return { callId: call.id, name: call.name, content: `No such file: ${path}`, isError: true };
}

function request(subject: Subject, messages: ModelMessage[]) {
  return { model: subject.model, system: SYSTEM, messages, tools: TOOLS, maxOutputTokens: 1024 };
}

/** A tiny agent loop: ask, run the proposed calls, feed the results back, until the model answers. */
async function converse(subject: Subject, provider: ModelProvider, prompt: string): Promise<ModelReply[]> {
  const messages: ModelMessage[] = [{ role: 'user', text: prompt }];
  const replies: ModelReply[] = [];
  for (let step = 0; step < 5; step++) {
    const reply = await provider.complete(request(subject, messages), new AbortController().signal);
    replies.push(reply);
    if (reply.calls.length === 0) break;
    messages.push({ role: 'assistant', text: reply.text, calls: reply.calls });
    messages.push({ role: 'tool', results: reply.calls.map(runTool) });
  }
  return replies;
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

describe.each([
  ['anthropic', anthropic],
  ['openai', openai],
])('%s provider against a fake server', (_name, subject) => {
  let fake: FakeModelServer;
  let retries: { code: string; attempt: number; delayMs: number }[];
  let circuit: CircuitStateName[];
  const ask = (provider: ModelProvider, signal = new AbortController().signal) =>
    provider.complete(request(subject, [{ role: 'user', text: 'Hello?' }]), signal);
  const resilient = (
    options: Partial<ResilienceOptions> = {},
    onRetry?: () => void,
    inner = subject.make(fake.baseUrl),
  ) =>
    new ResilientProvider(
      inner,
      { ...FAST, ...options },
      {
        onRetry: (error, attempt, delayMs) => {
          retries.push({ code: error.code, attempt, delayMs });
          onRetry?.();
        },
        onCircuit: (state) => circuit.push(state),
      },
    );

  beforeAll(async () => {
    fake = await FakeModelServer.start(subject.format);
  });
  afterAll(async () => {
    await fake?.close();
  });
  beforeEach(() => {
    fake.reset();
    retries = [];
    circuit = [];
  });
  afterEach(() => {
    jest.useRealTimers();
  });
  /** A provider whose next retry resolves `retried`: cockatiel sets the backoff timer before it says so. */
  const retrying = (options: Partial<ResilienceOptions> = {}) => {
    let retried!: () => void;
    const next = new Promise<void>((resolve) => (retried = resolve));
    return { provider: resilient(options, () => retried()), retried: next };
  };

  it('runs a multi-step tool-use flow, sending the tools, the system prompt and every result back', async () => {
    const [a, b, c] = subject.ids;
    fake.enqueue(
      fake.wire.toolUse([{ id: a, name: 'list_directory', input: { path: '.' } }], {
        usage: { input: 120, output: 15 },
      }),
      fake.wire.toolUse(
        [
          { id: b, name: 'read_text_file', input: { path: 'notes.txt' } },
          { id: c, name: 'read_text_file', input: { path: 'notes.md' } },
        ],
        { text: 'Reading both.', usage: { input: 180, output: 30 } },
      ),
      fake.wire.text('The notes say: buy milk.', { usage: { input: 240, output: 12 } }),
    );

    const replies = await converse(subject, resilient(), 'What do the notes say?');

    expect(replies).toEqual([
      {
        text: '',
        calls: [{ id: a, name: 'list_directory', arguments: { path: '.' } }],
        usage: { inputTokens: 120, outputTokens: 15 },
        stop: 'tool_use',
      },
      {
        text: 'Reading both.',
        calls: [
          { id: b, name: 'read_text_file', arguments: { path: 'notes.txt' } },
          { id: c, name: 'read_text_file', arguments: { path: 'notes.md' } },
        ],
        usage: { inputTokens: 180, outputTokens: 30 },
        stop: 'tool_use',
      },
      {
        text: 'The notes say: buy milk.',
        calls: [],
        usage: { inputTokens: 240, outputTokens: 12 },
        stop: 'end',
      },
    ]);
    expect(fake.requests).toHaveLength(3);
    const path = subject.format === 'anthropic' ? '/v1/messages' : '/v1/chat/completions';
    for (const recorded of fake.requests) {
      expect(recorded).toMatchObject({ method: 'POST', path });
      // Both SDKs send the key as a bearer token (Anthropic's may also use x-api-key).
      expect(recorded.headers['x-api-key'] ?? recorded.headers.authorization).toContain(KEY);
    }
    expect(fake.requests[2]!.body).toEqual(expect.objectContaining(subject.expectedWire(subject.ids)));
    expect(fake.pending).toBe(0);
  });

  it('retries a 429, waiting what retry-after-ms asks', async () => {
    useFakeClock();
    fake.enqueue(
      fake.wire.error('rate_limited', { headers: { 'retry-after-ms': '300' } }),
      fake.wire.text('ok'),
    );
    const { provider, retried } = retrying();

    const reply = track(ask(provider));
    await retried;
    await jest.advanceTimersByTimeAsync(299);
    expect(fake.requests).toHaveLength(1);
    expect(reply.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);

    expect((await reply.promise).text).toBe('ok');
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBe(300);
    expect(retries).toEqual([{ code: 'provider_rate_limited', attempt: 1, delayMs: 300 }]);
  });

  it('retries an overloaded provider, waiting retry-after seconds', async () => {
    useFakeClock();
    fake.enqueue(fake.wire.error('overloaded', { headers: { 'retry-after': '1' } }), fake.wire.text('ok'));
    const { provider, retried } = retrying();

    const reply = track(ask(provider));
    await retried;
    await jest.advanceTimersByTimeAsync(999);
    expect(fake.requests).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);

    expect((await reply.promise).text).toBe('ok');
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBe(1000);
    expect(retries).toEqual([{ code: 'provider_unavailable', attempt: 1, delayMs: 1000 }]);
  });

  it('does not retry a refused key, and never echoes the provider error text (which can hold the key)', async () => {
    fake.enqueue(fake.wire.error('auth', { message: LEAKY }), fake.wire.text('not reached'));

    const error = await failure(ask(resilient()));

    expect(error.code).toBe('provider_auth');
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(`The ${subject.format} API key was refused (401). Check ${subject.keyVar}.`);
    expect(error.message).not.toContain('LEAK');
    expect(error.details).toEqual({ provider: subject.format, status: 401 });
    expect(fake.requests).toHaveLength(1);
    expect(retries).toEqual([]);
  });

  it.each([
    ['bad_request', 'provider_bad_request', 'messages: field required (sk-test-LEAK)'],
    [
      'context_too_long',
      'context_too_long',
      'prompt is too long: 208310 tokens > 200000 maximum (sk-test-LEAK)',
    ],
  ] as const)(
    'does not retry a %s 400 (%s), and keeps its wording out of the message',
    async (kind, code, text) => {
      fake.enqueue(fake.wire.error(kind, { message: text }), fake.wire.text('not reached'));

      const error = await failure(ask(resilient()));

      expect(error.code).toBe(code);
      expect(error.message).toContain('(400)');
      expect(error.message).not.toMatch(/LEAK|tokens|field/);
      expect(fake.requests).toHaveLength(1);
    },
  );

  it('gives up with provider_timeout when every attempt outlives the per-attempt timeout', async () => {
    useFakeClock();
    fake.enqueue(
      { ...fake.wire.text('late'), delayMs: 1_500 },
      { ...fake.wire.text('late'), delayMs: 1_500 },
    );
    const provider = resilient({ timeoutMs: 150, retries: 1 });

    const call = track(ask(provider));
    await fake.until(() => fake.requests.length === 1);
    await jest.advanceTimersByTimeAsync(149);
    expect(retries).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    await untilReal('the first attempt has timed out', () => retries.length === 1);
    await jest.advanceTimersByTimeAsync(retries[0]!.delayMs);
    await fake.until(() => fake.requests.length === 2);
    await jest.advanceTimersByTimeAsync(149);
    expect(call.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    const error = await failure(call.promise);

    expect(error.code).toBe('provider_timeout');
    expect(error.message).toBe(`The ${subject.format} API did not answer within 150 ms.`);
    expect(fake.requests).toHaveLength(2);
    // Each attempt gave up at its timeout, long before the server would have answered.
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBe(150 + retries[0]!.delayMs);
    await fake.until(() => fake.requests.every((r) => r.abandoned));
    expect(retries).toEqual([{ code: 'provider_timeout', attempt: 1, delayMs: expect.any(Number) }]);
  });

  it('opens the circuit after consecutive failures, refuses without calling, and closes after a good call', async () => {
    useFakeClock();
    const provider = resilient({ retries: 0, breakerFailures: 2, breakerHalfOpenMs: 200 });
    fake.enqueue(fake.wire.error('overloaded'), fake.wire.error('server_error'));

    expect((await failure(ask(provider))).code).toBe('provider_unavailable');
    expect(provider.circuitState()).toBe('closed');
    expect((await failure(ask(provider))).code).toBe('provider_unavailable');
    expect(provider.circuitState()).toBe('open');

    const refused = await failure(ask(provider));
    expect(refused.code).toBe('provider_circuit_open');
    expect(refused.message).toBe(`The ${subject.format} provider is failing; requests are paused for 1s.`);
    expect(fake.requests).toHaveLength(2);

    // The pause is exact: 1 ms short of it the circuit still refuses without calling.
    await jest.advanceTimersByTimeAsync(199);
    expect((await failure(ask(provider))).code).toBe('provider_circuit_open');
    expect(fake.requests).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(1);
    fake.enqueue(fake.wire.text('back'));
    expect((await ask(provider)).text).toBe('back');
    expect(provider.circuitState()).toBe('closed');
    expect(fake.requests).toHaveLength(3);
    expect(circuit).toEqual(['open', 'half-open', 'closed']);
  });

  it('counts each attempt to the breaker: a circuit opening mid-call ends its retries', async () => {
    const provider = resilient({ retries: 3, breakerFailures: 2 });
    fake.enqueue(fake.wire.error('overloaded'), fake.wire.error('overloaded'), fake.wire.error('overloaded'));

    expect((await failure(ask(provider))).code).toBe('provider_circuit_open');
    expect(fake.requests).toHaveLength(2);
  });

  it('does not open the circuit on a refused key', async () => {
    const provider = resilient({ retries: 0, breakerFailures: 1 });
    fake.enqueue(fake.wire.error('auth'), fake.wire.error('auth'));

    expect((await failure(ask(provider))).code).toBe('provider_auth');
    expect((await failure(ask(provider))).code).toBe('provider_auth');
    expect(provider.circuitState()).toBe('closed');
    expect(fake.requests).toHaveLength(2);
  });

  it('stops at once when the caller aborts during a backoff: no waiting, no further attempt', async () => {
    useFakeClock();
    const controller = new AbortController();
    const reason = new Error('cancelled by the user');
    fake.enqueue(
      fake.wire.error('rate_limited', { headers: { 'retry-after-ms': '600' } }),
      fake.wire.text('no'),
    );
    const inner = subject.make(fake.baseUrl);
    const attempts = jest.spyOn(inner, 'complete');

    // Aborted once the backoff timer is set; the fake clock never moves, so any wait would hang here.
    const call = ask(
      resilient({}, () => controller.abort(reason), inner),
      controller.signal,
    );

    await expect(call).rejects.toBe(reason);
    expect(attempts).toHaveBeenCalledTimes(1);
    // Past the backoff: the attempt it scheduled sees the abort and never calls the provider.
    await jest.advanceTimersByTimeAsync(600);
    expect(attempts).toHaveBeenCalledTimes(1);
    expect(fake.requests).toHaveLength(1);
  });

  it('stops at once when the caller aborts a request in flight, rethrowing their reason unchanged', async () => {
    useFakeClock();
    const controller = new AbortController();
    const reason = new Error('turn deadline');
    fake.enqueue({ ...fake.wire.text('late'), delayMs: 2_000 });

    const call = ask(resilient(), controller.signal);
    await fake.until(() => fake.requests.length === 1);
    controller.abort(reason);

    // The fake clock never moves: the call ends without waiting for the answer or any timer.
    await expect(call).rejects.toBe(reason);
    expect(fake.requests).toHaveLength(1);
    await fake.until(() => fake.requests[0]!.abandoned);
    expect(retries).toEqual([]);
  });

  it('rethrows the abort reason from the bare provider too', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(ask(subject.make(fake.baseUrl), controller.signal)).rejects.toBe(reason);
  });

  it('reports an unreachable server as provider_unavailable', async () => {
    const gone = await FakeModelServer.start(subject.format);
    await gone.close();
    const error = await failure(ask(subject.make(gone.baseUrl)));
    expect(error.code).toBe('provider_unavailable');
  });
});

describe('anthropic wire details', () => {
  it('merges consecutive turns of one role, results leading the user turn', async () => {
    const fake = await FakeModelServer.start('anthropic');
    try {
      fake.enqueue(fake.wire.text('ok'));
      const provider = new AnthropicProvider({ apiKey: KEY, baseUrl: fake.baseUrl });
      await provider.complete(
        request(anthropic, [
          { role: 'user', text: 'one' },
          { role: 'user', text: 'two' },
          {
            role: 'assistant',
            text: '',
            calls: [{ id: 't1', name: 'list_directory', arguments: { path: '.' } }],
          },
          { role: 'tool', results: [{ callId: 't1', name: 'list_directory', content: 'a', isError: false }] },
          { role: 'user', text: 'and now?' },
        ]),
        new AbortController().signal,
      );
      expect(fake.requests[0]!.body.messages).toEqual([
        {
          role: 'user',
          content: [
            { type: 'text', text: 'one' },
            { type: 'text', text: 'two' },
          ],
        },
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: 't1', name: 'list_directory', input: { path: '.' } }],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 't1', content: 'a', is_error: false },
            { type: 'text', text: 'and now?' },
          ],
        },
      ]);
    } finally {
      await fake.close();
    }
  });
});

describe('openai wire details', () => {
  it('passes arguments that are not JSON on as a raw string, and counts no usage when none is sent', async () => {
    const fake = await FakeModelServer.start('openai');
    try {
      const reply = fake.wire.toolUse([{ id: 'c1', name: 'read_text_file', input: '{"path": "a.txt"' }]);
      delete (reply.body as { usage?: unknown }).usage;
      fake.enqueue(reply);
      const provider = new OpenAIProvider({ baseUrl: fake.baseUrl });

      const result = await provider.complete(
        request(openai, [{ role: 'user', text: 'hi' }]),
        new AbortController().signal,
      );

      expect(result.calls).toEqual([{ id: 'c1', name: 'read_text_file', arguments: '{"path": "a.txt"' }]);
      expect(result.usage).toEqual({ inputTokens: 0, outputTokens: 0 });
      // No key configured (a local server): the SDK still needs one, so a placeholder goes out.
      expect(fake.requests[0]!.headers.authorization).toBe('Bearer not-needed');
    } finally {
      await fake.close();
    }
  });
});
