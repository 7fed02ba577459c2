/**
 * A conversation outlives the process that started it: on SQLite across a restart on the same data
 * directory, on Redis across two processes sharing one server. The model (a fake Anthropic API) sees the
 * earlier turn, and concurrent prompts on one conversation are kept as whole turns, numbered 1..n.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { ConverseAnswer as Answer } from '../../src/agent/agent.service.js';
import { spawnServer, type CliServer } from '../support/cli-server.js';
import { anthropicWire, FakeModelServer } from '../support/fake-model-server.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const CONCURRENT = 20;
/** Concurrent turns on the fake model, where each also waits for the model. */
const MODEL_TURNS = 10;

interface Turn {
  seq: number;
  prompt: string;
  answer: string;
  steps: Array<{ tool: string; outcome: string }>;
}

let base: string;
let workspace: string;
let fake: FakeModelServer;
let redis: RedisServer;
const started: CliServer[] = [];

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-continuity-')));
  workspace = path.join(base, 'ws');
  mkdirSync(workspace);
  writeFileSync(path.join(workspace, 'notes.txt'), 'remember the milk\n');
  for (let i = 1; i <= CONCURRENT; i++) writeFileSync(path.join(workspace, `file-${i}.txt`), `marker-${i}\n`);
  [fake, redis] = await Promise.all([FakeModelServer.start('anthropic'), startRedis()]);
});

beforeEach(() => fake.reset());

afterAll(async () => {
  // Only the servers this file started, by their own handles; a test that failed may have left some up.
  for (const server of started) if (server.child.exitCode === null) server.child.kill('SIGKILL');
  await Promise.all(started.map((server) => server.exited));
  await Promise.all([fake?.close(), redis?.stop()]);
  rmSync(base, { recursive: true, force: true });
});

/** The fake Anthropic API as the default provider; no retries, so a missing script fails at once. */
function anthropicEnv(): Record<string, string> {
  return {
    BASTION_AGENT_PROVIDER: 'anthropic',
    ANTHROPIC_API_KEY: 'sk-test',
    ANTHROPIC_BASE_URL: fake.baseUrl,
    BASTION_AGENT_RETRIES: '0',
  };
}

function redisEnv(): Record<string, string> {
  return { BASTION_STORE: 'redis', BASTION_REDIS_URL: redis.url };
}

async function start(dataDir: string, env: Record<string, string>): Promise<CliServer> {
  const server = await spawnServer(workspace, path.join(base, dataDir), env);
  started.push(server);
  return server;
}

/** One `converse` call over MCP with the SDK client, on a fresh session. */
async function converse(server: CliServer, args: { prompt: string; conversation_id?: string }) {
  const client = new Client({ name: 'continuity-e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(server.url)));
  try {
    const result = await client.callTool({ name: 'converse', arguments: args });
    expect(result.isError).toBeFalsy();
    return result.structuredContent as unknown as Answer;
  } finally {
    await client.close();
  }
}

function rest(server: CliServer, method: string, route: string, body?: unknown): Promise<Response> {
  return fetch(new URL(route, server.url), {
    method,
    ...(body !== undefined && {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  });
}

async function turnsOn(server: CliServer, id: string): Promise<Turn[]> {
  const response = await rest(server, 'GET', `/v1/conversations/${id}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { turns: Turn[] }).turns;
}

async function listedOn(server: CliServer): Promise<Array<{ id: string; turnCount: number }>> {
  const response = await rest(server, 'GET', '/v1/conversations?limit=100');
  expect(response.status).toBe(200);
  return ((await response.json()) as { items: Array<{ id: string; turnCount: number }> }).items;
}

/** What the model must be sent on turn 2: turn 1's prompt and answer, then the new prompt. */
function continued(first: { prompt: string; answer: string }, prompt: string) {
  return [
    { role: 'user', content: [{ type: 'text', text: first.prompt }] },
    { role: 'assistant', content: [{ type: 'text', text: first.answer }] },
    { role: 'user', content: [{ type: 'text', text: prompt }] },
  ];
}

const FIRST = { prompt: 'My name is Ada. What do my notes say?', answer: 'Nice to meet you, Ada.' };
const SECOND = { prompt: 'What is my name?', answer: 'Your name is Ada.' };

describe('SQLite, across a restart', () => {
  it('continues the conversation on a new process over the same data directory, with turn 1 in view', async () => {
    const before = await start('data-sqlite', anthropicEnv());
    fake.enqueue(anthropicWire.text(FIRST.answer));
    const one = await converse(before, { prompt: FIRST.prompt });
    expect(one).toMatchObject({ answer: FIRST.answer, usage: { provider: 'anthropic', model_calls: 1 } });
    expect(await before.stop()).toBe(0);

    const after = await start('data-sqlite', anthropicEnv());
    fake.enqueue(anthropicWire.text(SECOND.answer));
    const two = await converse(after, { prompt: SECOND.prompt, conversation_id: one.conversation_id });
    expect(two).toMatchObject({ conversation_id: one.conversation_id, answer: SECOND.answer });

    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[0]?.body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: FIRST.prompt }] },
    ]);
    expect(fake.requests[1]?.body.messages).toEqual(continued(FIRST, SECOND.prompt));
    expect(await turnsOn(after, one.conversation_id)).toEqual([
      expect.objectContaining({ seq: 1, ...FIRST }),
      expect.objectContaining({ seq: 2, ...SECOND }),
    ]);
    expect(await after.stop()).toBe(0);
  });
});

describe('Redis, two server processes', () => {
  it('continues on server B a conversation started on server A, with turn 1 in view, and both list it', async () => {
    // Separate data directories: what B knows of the conversation can only come from Redis.
    const env = { ...anthropicEnv(), ...redisEnv() };
    const [a, b] = await Promise.all([start('data-redis-a', env), start('data-redis-b', env)]);
    fake.enqueue(anthropicWire.text(FIRST.answer));
    const one = await converse(a, { prompt: FIRST.prompt });
    fake.enqueue(anthropicWire.text(SECOND.answer));
    const two = await converse(b, { prompt: SECOND.prompt, conversation_id: one.conversation_id });
    expect(two).toMatchObject({ conversation_id: one.conversation_id, answer: SECOND.answer });

    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[1]?.body.messages).toEqual(continued(FIRST, SECOND.prompt));
    const expected = [
      expect.objectContaining({ seq: 1, ...FIRST }),
      expect.objectContaining({ seq: 2, ...SECOND }),
    ];
    for (const server of [a, b]) {
      expect(await listedOn(server)).toContainEqual(
        expect.objectContaining({ id: one.conversation_id, turnCount: 2 }),
      );
      expect(await turnsOn(server, one.conversation_id)).toEqual(expected);
    }
    expect(await Promise.all([a.stop(), b.stop()])).toEqual([0, 0]);
  });
});

describe.each([
  ['sqlite', 1],
  ['redis', 2],
] as const)('%s: concurrent prompts on one conversation', (store, processes) => {
  it(`keeps ${CONCURRENT} whole turns, numbered 1..${CONCURRENT}, across ${processes} process(es)`, async () => {
    const env = { BASTION_AGENT_PROVIDER: 'rules', ...(store === 'redis' ? redisEnv() : {}) };
    const servers = await Promise.all(
      Array.from({ length: processes }, (_, n) => start(`data-${store}-concurrent-${n}`, env)),
    );
    const created = await rest(servers[0] as CliServer, 'POST', '/v1/conversations', {});
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    const prompts = Array.from({ length: CONCURRENT }, (_, n) => `read file-${n + 1}.txt`);
    const answers = await Promise.all(
      prompts.map(async (prompt, n) => {
        const server = servers[n % processes] as CliServer;
        const response = await rest(server, 'POST', `/v1/conversations/${id}/messages`, { prompt });
        expect(response.status).toBe(200);
        return (await response.json()) as Answer;
      }),
    );
    answers.forEach((answer, n) => expect(answer.answer.match(/marker-\d+/g)).toEqual([`marker-${n + 1}`]));

    for (const server of servers) {
      const turns = await turnsOn(server, id);
      expect(turns.map((turn) => turn.seq)).toEqual(prompts.map((_, n) => n + 1));
      expect(turns.map((turn) => turn.prompt).sort()).toEqual([...prompts].sort());
      for (const turn of turns) {
        const own = /^read file-(\d+)\.txt$/.exec(turn.prompt)?.[1];
        expect(turn.answer.match(/marker-\d+/g)).toEqual([`marker-${own}`]);
        expect(turn.steps).toEqual([expect.objectContaining({ tool: 'read_text_file', outcome: 'ok' })]);
      }
    }
    expect(await Promise.all(servers.map((server) => server.stop()))).toEqual(servers.map(() => 0));
  });
});

describe.each([
  ['sqlite', 1],
  ['redis', 2],
] as const)('%s: turns in line', (store, processes) => {
  it(`shows each of ${MODEL_TURNS} concurrent turns every earlier turn, never one still running`, async () => {
    const env = { ...anthropicEnv(), ...(store === 'redis' ? redisEnv() : {}) };
    const servers = await Promise.all(
      Array.from({ length: processes }, (_, n) => start(`data-${store}-in-line-${n}`, env)),
    );
    const created = await rest(servers[0] as CliServer, 'POST', '/v1/conversations', {});
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    // A slow model, so a turn that did not wait for the one before would overlap it.
    for (let k = 1; k <= MODEL_TURNS; k++)
      fake.enqueue({ ...anthropicWire.text(`answer-${k}`), delayMs: 20 });

    const prompts = Array.from({ length: MODEL_TURNS }, (_, n) => `prompt-${n + 1}`);
    const answers = await Promise.all(
      prompts.map(async (prompt, n) => {
        const server = servers[n % processes] as CliServer;
        const response = await rest(server, 'POST', `/v1/conversations/${id}/messages`, { prompt });
        expect(response.status).toBe(200);
        return { prompt, answer: ((await response.json()) as Answer).answer };
      }),
    );

    const turns = await turnsOn(servers[0] as CliServer, id);
    // The k-th model request answered the k-th stored turn: no turn asked before the one ahead was stored.
    expect(turns.map((turn) => turn.answer)).toEqual(prompts.map((_, n) => `answer-${n + 1}`));
    expect(turns.map(({ prompt, answer }) => ({ prompt, answer })).sort(byPrompt)).toEqual(
      answers.sort(byPrompt),
    );
    expect(fake.requests).toHaveLength(MODEL_TURNS);
    turns.forEach((turn, k) => {
      const history = turns.slice(0, k).flatMap((earlier) => [
        { role: 'user', content: [{ type: 'text', text: earlier.prompt }] },
        { role: 'assistant', content: [{ type: 'text', text: earlier.answer }] },
      ]);
      expect(fake.requests[k]?.body.messages).toEqual([
        ...history,
        { role: 'user', content: [{ type: 'text', text: turn.prompt }] },
      ]);
    });
    expect(await Promise.all(servers.map((server) => server.stop()))).toEqual(servers.map(() => 0));
  });
});

function byPrompt(a: { prompt: string }, b: { prompt: string }): number {
  return a.prompt.localeCompare(b.prompt);
}
