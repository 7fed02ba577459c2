/**
 * What a conversation leaves behind outside the conversation store: a real server process (JSON logs at info
 * level on stdout, the audit log, /metrics) after turns whose prompts, answers and files carry markers and
 * secrets. And a cancelled turn over MCP leaves nothing half-written.
 */
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { spawnServer, type CliServer } from '../support/cli-server.js';
import { FakeModelServer } from '../support/fake-model-server.js';

const PROMPT_MARKER = 'prompt-marker-7d1c';
const FILE_MARKER = 'file-marker-93ab';
const ANSWER_MARKER = 'answer-marker-c04e';
const SECRET = 'sk-ant-api03-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1';

let base: string;
let fake: FakeModelServer;
let server: CliServer;
let origin: string;

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-privacy-')));
  mkdirSync(path.join(base, 'ws'));
  writeFileSync(path.join(base, 'ws/secret.txt'), `${FILE_MARKER}\napi_key=${SECRET}\n`);
  fake = await FakeModelServer.start('anthropic');
  server = await spawnServer(path.join(base, 'ws'), path.join(base, 'data'), {
    BASTION_AGENT_PROVIDER: 'anthropic',
    ANTHROPIC_API_KEY: 'sk-ant-test-key-never-logged',
    ANTHROPIC_BASE_URL: fake.baseUrl,
    BASTION_LOG_LEVEL: 'info',
  });
  origin = new URL(server.url).origin;
});

afterAll(async () => {
  await server?.stop();
  await fake?.close();
  rmSync(base, { recursive: true, force: true });
});

async function connect(): Promise<Client> {
  const client = new Client({ name: 'privacy-e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(server.url)));
  return client;
}

async function turnCount(id: string): Promise<number> {
  const response = await fetch(`${origin}/v1/conversations/${id}`);
  return ((await response.json()) as { turns: unknown[] }).turns.length;
}

describe('privacy', () => {
  it('keeps prompts, answers, file contents and secrets out of logs, audit and metrics', async () => {
    fake.enqueue(
      fake.wire.toolUse([{ name: 'read_text_file', input: { path: 'secret.txt' } }]),
      fake.wire.text(`${ANSWER_MARKER}: the file holds a key.`),
    );
    const client = await connect();
    const result = await client.callTool({
      name: 'converse',
      arguments: { prompt: `${PROMPT_MARKER} read secret.txt, my key is ${SECRET}` },
    });
    await client.close();
    expect((result.structuredContent as { answer: string }).answer).toContain(ANSWER_MARKER);
    // The model did receive the file: it is the owner's to read.
    expect(JSON.stringify(fake.requests[1]?.body)).toContain(FILE_MARKER);

    const metrics = await (await fetch(`${origin}/metrics`)).text();
    expect(metrics).toMatch(/bastion_agent_steps_total\{decision="allow",reason="none"\} [1-9]/);
    expect(metrics).toMatch(/bastion_agent_turns_total\{provider="anthropic",outcome="answered"\} [1-9]/);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const audit = readFileSync(path.join(base, 'data/audit/audit.jsonl'), 'utf8');
    expect(audit).toContain('"kind":"agent_step"');
    for (const [name, text] of [
      ['logs', server.stdout() + server.stderr()],
      ['audit log', audit],
      ['metrics', metrics],
    ] as const) {
      for (const marker of [
        PROMPT_MARKER,
        FILE_MARKER,
        ANSWER_MARKER,
        SECRET,
        'sk-ant-test-key-never-logged',
      ])
        expect({ [name]: text.includes(marker) }).toEqual({ [name]: false });
    }
    expect(server.stdout()).toContain('"msg":"request completed"');

    server = await spawnServer(path.join(base, 'ws'), path.join(base, 'data'), {
      BASTION_AGENT_PROVIDER: 'anthropic',
      ANTHROPIC_API_KEY: 'sk-ant-test-key-never-logged',
      ANTHROPIC_BASE_URL: fake.baseUrl,
    });
    origin = new URL(server.url).origin;
  });

  it('stores nothing of a turn the client cancels while the model is answering', async () => {
    fake.enqueue(fake.wire.text('first answer'));
    const client = await connect();
    const first = await client.callTool({ name: 'converse', arguments: { prompt: 'hello' } });
    const id = (first.structuredContent as { conversation_id: string }).conversation_id;
    expect(await turnCount(id)).toBe(1);

    // The model thinks until the test lets it answer.
    let answer!: () => void;
    const thinking = new Promise<void>((resolve) => (answer = resolve));
    fake.enqueue({ ...fake.wire.text('too late'), heldUntil: thinking });
    const asked = fake.requests.length;
    const cancel = new AbortController();
    const call = client.callTool(
      { name: 'converse', arguments: { prompt: 'a slow one', conversation_id: id } },
      { signal: cancel.signal },
    );
    await fake.until(() => fake.requests.length === asked + 1); // the model is answering
    cancel.abort();
    await expect(call).rejects.toThrow();
    await client.close();
    // The server gives the model request up: the turn ended without its answer.
    await fake.until(() => fake.requests[asked]!.abandoned);
    answer();
    expect(await turnCount(id)).toBe(1);
    const history = (await (await fetch(`${origin}/v1/conversations/${id}`)).json()) as {
      turns: Array<{ prompt: string }>;
    };
    expect(history.turns.map((t) => t.prompt)).toEqual(['hello']);
    // The next turn takes the conversation's lock only once the cancelled one has let it go, so nothing
    // of that one can be written after this.
    fake.enqueue(fake.wire.text('third answer'));
    const next = await connect();
    await next.callTool({ name: 'converse', arguments: { prompt: 'next', conversation_id: id } });
    await next.close();
    const after = (await (await fetch(`${origin}/v1/conversations/${id}`)).json()) as {
      turns: Array<{ prompt: string }>;
    };
    expect(after.turns.map((t) => t.prompt)).toEqual(['hello', 'next']);
  });
});
