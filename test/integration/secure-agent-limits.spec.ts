/**
 * The real SecureAgent, as the runtime assembles it, against fake model servers through the real SDKs: the
 * limits that end a turn (model requests, wall time, bytes of tool output), provider failures as a caller
 * sees them (refused key, rate limit, open circuit), and cancellation, which never leaves half a turn.
 * The turn's time limit and the wait a 429 asks for run on Jest's fake clock while the HTTP stays real. The
 * tool loop and the Supervisor are in secure-agent.spec.ts.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { ProviderError } from '../../src/agent/providers/provider.errors.js';
import { TurnCancelled } from '../../src/agent/secure-agent.js';
import { localPrincipal } from '../../src/auth/principal.js';
import {
  startAgent as startHarness,
  type AgentHarness as Harness,
  type AgentSettings,
} from '../support/agent-harness.js';
import { track, untilReal, useFakeClock } from '../support/fake-clock.js';
import { FakeModelServer } from '../support/fake-model-server.js';

const OWNER = localPrincipal(false);

/** A runtime on a fresh workspace (notes.txt, src/) and data directory, its agent on the fake. */
function startAgent(fake: FakeModelServer, settings: Omit<AgentSettings, 'files'> = {}): Promise<Harness> {
  return startHarness(fake, { ...settings, files: { 'notes.txt': 'Buy milk.\n' } });
}

interface Series {
  get(): Promise<{ values: Array<{ labels: Record<string, string | number | undefined>; value: number }> }>;
}

/** The value of one series of a metric (the registry is process-wide: compare before and after). */
async function valueOf(metric: Series, labels: Record<string, string>): Promise<number> {
  const { values } = await metric.get();
  const series = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return series?.value ?? 0;
}

/** What a promise rejected with (fails the test if it resolved). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

describe.each([['anthropic' as const], ['openai' as const]])(
  'SecureAgent limits and failures on %s',
  (format) => {
    let fake: FakeModelServer;
    let h: Harness | undefined;
    const start = async (settings?: Parameters<typeof startAgent>[1]) =>
      (h = await startAgent(fake, settings));

    beforeAll(async () => {
      fake = await FakeModelServer.start(format);
    });
    afterAll(async () => {
      await fake?.close();
    });
    beforeEach(() => fake.reset());
    afterEach(async () => {
      jest.useRealTimers();
      await h?.close();
      h = undefined;
    });

    describe('limits', () => {
      it('ends the turn with the steps-limit answer after exactly maxSteps model requests', async () => {
        await start({ limits: { maxSteps: 3 } });
        for (const p of ['.', 'src', 'notes.txt', 'more'])
          fake.enqueue(fake.wire.toolUse([{ name: 'get_file_info', input: { path: p } }]));

        const answer = await h!.converse('Look at everything, forever.');

        expect(answer.answer).toMatch(/^I stopped after 3 model requests, the limit for one turn/);
        expect(fake.requests).toHaveLength(3);
        expect(fake.pending).toBe(1);
        expect(answer.steps.map((s) => s.summary)).toEqual([
          'get_file_info .',
          'get_file_info src',
          'get_file_info notes.txt',
        ]);
        expect(answer.usage.model_calls).toBe(3);
        // A turn ended by a limit is a whole turn: it is kept.
        expect(await h!.agent.store.turns(answer.conversation_id, OWNER.id)).toHaveLength(1);
      });

      it('ends the turn with the time-limit answer, promptly, when the model outlives turnTimeMs', async () => {
        // A limit no real clock would reach during the test: only the fake one can end this turn.
        await start({ limits: { turnTimeMs: 60_000 }, resilience: { timeoutMs: 120_000 } });
        fake.enqueue({ ...fake.wire.text('Too late.'), delayMs: 120_000 });
        useFakeClock();

        const pending = track(h!.converse('Take your time.'));
        await fake.until(() => fake.requests.length === 1);
        await jest.advanceTimersByTimeAsync(59_999);
        expect(pending.settled).toBe(false);
        await jest.advanceTimersByTimeAsync(1);
        await untilReal('the turn ends at its deadline', () => pending.settled, 5_000);
        const answer = await pending.promise;

        expect(answer.answer).toMatch(/^I ran out of time \(60s per turn\) before finishing/);
        expect(answer.steps).toEqual([]);
        expect(fake.requests).toHaveLength(1);
        // The model request was given up at the deadline, not answered.
        await fake.until(() => fake.requests[0]!.abandoned);
      });

      it('cuts each tool result to maxResultBytes and the turn to maxToolOutputBytes, saying so', async () => {
        const { root } = await start({ limits: { maxResultBytes: 999, maxToolOutputBytes: 1_500 } });
        writeFileSync(path.join(root, 'big-a.txt'), 'é'.repeat(2_000)); // 4000 bytes, two per character
        writeFileSync(path.join(root, 'big-b.txt'), 'b'.repeat(4_000));
        writeFileSync(path.join(root, 'big-c.txt'), 'c'.repeat(4_000));
        fake.enqueue(
          fake.wire.toolUse(
            ['big-a.txt', 'big-b.txt', 'big-c.txt'].map((p) => ({
              name: 'read_text_file',
              input: { path: p },
            })),
          ),
          fake.wire.text('They are big.'),
        );

        const answer = await h!.converse('Read the big files.');

        expect(answer.steps.map((s) => s.outcome)).toEqual(['ok', 'ok', 'ok']);
        const [a, b, c] = fake.view(1).toolResults.map((r) => r.content);
        const [shownA, noteA] = a!.split('\n[Cut: ');
        // Never more than the cap, and never half a character.
        expect(Buffer.byteLength(shownA!)).toBeLessThanOrEqual(999);
        expect(shownA).toBe('é'.repeat(499));
        expect(noteA).toMatch(/^4000 bytes in all, 999 shown\. Ask for less/);
        // What is left of the turn's budget (1500 - 999) caps the next one.
        expect(b).toBe(
          `${'b'.repeat(501)}\n[Cut: 4000 bytes in all, 501 shown. Ask for less (head, tail or a narrower path).]`,
        );
        expect(c).toMatch(/^\[Output omitted: the tool-output budget of this turn is used up/);
        expect(c).not.toContain('ccc');
      });
    });

    describe('provider failures', () => {
      it('fails on a refused key with provider_auth, never echoing the provider, and keeps no conversation', async () => {
        const { agent } = await start();
        fake.enqueue(fake.wire.error('auth', { message: 'Incorrect API key provided: sk-test-LEAK.' }));

        const error = await rejection(h!.converse('Hello?'));

        expect(error).toBeInstanceOf(ProviderError);
        expect(error).toMatchObject({ code: 'provider_auth' });
        expect((error as Error).message).toBe(
          `The ${format} API key was refused (401). Check ${format.toUpperCase()}_API_KEY.`,
        );
        expect((error as Error).message).not.toMatch(/LEAK|Incorrect/);
        expect(await agent.store.list(OWNER.id, { limit: 10 })).toEqual({ items: [] });
      });

      it('retries a 429 after retry-after-ms, answers, and counts the retry', async () => {
        const { runtime } = await start({ resilience: { retries: 2 } });
        const labels = { provider: format, code: 'provider_rate_limited' };
        const before = await valueOf(runtime.metrics.modelRetries, labels);
        fake.enqueue(
          fake.wire.error('rate_limited', { headers: { 'retry-after-ms': '100' } }),
          fake.wire.text('Hello after the wait.'),
        );
        useFakeClock();

        const pending = track(h!.converse('Hello?'));
        // Counted when the 429 is back and the wait is set.
        const retried = async () => (await valueOf(runtime.metrics.modelRetries, labels)) - before === 1;
        await untilReal('the 429 is retried', retried);
        await jest.advanceTimersByTimeAsync(99);
        expect(fake.requests).toHaveLength(1);
        await jest.advanceTimersByTimeAsync(1);
        const answer = await pending.promise;

        expect(answer.answer).toBe('Hello after the wait.');
        expect(answer.usage.model_calls).toBe(1);
        expect(fake.requests).toHaveLength(2);
        expect(fake.requests[1]!.at - fake.requests[0]!.at).toBe(100);
        expect((await valueOf(runtime.metrics.modelRetries, labels)) - before).toBe(1);
      });

      it('opens the circuit after breakerFailures failed turns, then fails fast without calling the model', async () => {
        const { agent, runtime } = await start({ resilience: { retries: 0, breakerFailures: 2 } });
        fake.enqueue(
          fake.wire.error('overloaded'),
          fake.wire.error('server_error'),
          fake.wire.text('unused'),
        );

        expect(await rejection(h!.converse('One?'))).toMatchObject({ code: 'provider_unavailable' });
        expect(await rejection(h!.converse('Two?'))).toMatchObject({ code: 'provider_unavailable' });
        const started = performance.now();
        const refused = await rejection(h!.converse('Three?'));

        expect(refused).toBeInstanceOf(ProviderError);
        expect(refused).toMatchObject({ code: 'provider_circuit_open' });
        expect(performance.now() - started).toBeLessThan(500);
        expect(fake.requests).toHaveLength(2);
        expect(agent.router.status()).toEqual([{ name: format, circuit: 'open' }]);
        expect(await valueOf(runtime.metrics.circuitOpen, { provider: format })).toBe(1);
        expect(await agent.store.list(OWNER.id, { limit: 10 })).toEqual({ items: [] });
      });
    });

    describe('cancellation', () => {
      it('cancels while the model is answering: TurnCancelled, and the conversation keeps only whole turns', async () => {
        const { agent } = await start();
        fake.enqueue(fake.wire.text('First answer.'), { ...fake.wire.text('Never seen.'), delayMs: 10_000 });
        const { conversation_id: id } = await h!.converse('First?');
        const controller = new AbortController();
        const started = performance.now();

        const pending = rejection(h!.converse('Second?', { conversationId: id, signal: controller.signal }));
        await fake.until(() => fake.requests.length === 2);
        controller.abort();
        const error = await pending;

        expect(error).toBeInstanceOf(TurnCancelled);
        expect(error).toMatchObject({ code: 'cancelled' });
        expect(performance.now() - started).toBeLessThan(2_000);
        expect(await agent.store.turns(id, OWNER.id)).toEqual([
          expect.objectContaining({ seq: 1, prompt: 'First?' }),
        ]);
        expect(await agent.store.get(id, OWNER.id)).toMatchObject({ turnCount: 1 });
      });

      it('cancels between steps: the steps done are not kept, and the new conversation goes', async () => {
        const { agent } = await start();
        fake.enqueue(
          fake.wire.toolUse([{ name: 'list_directory', input: { path: '.' } }]),
          fake.wire.text('Never asked for.'),
        );
        const controller = new AbortController();

        const error = await rejection(
          h!.converse('List the workspace.', { signal: controller.signal, onStep: () => controller.abort() }),
        );

        expect(error).toBeInstanceOf(TurnCancelled);
        expect(fake.requests).toHaveLength(1);
        expect(fake.pending).toBe(1);
        expect(await agent.store.list(OWNER.id, { limit: 10 })).toEqual({ items: [] });
      });
    });
  },
);
