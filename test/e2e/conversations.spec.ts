/**
 * Conversations over REST and over MCP on a real server with API keys and the built-in rules provider:
 * the answer shape, progress, ownership (someone else's conversation is a 404, never a hint), bad input that
 * stores nothing, export, erasure, and the OpenAPI description.
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { ConverseAnswer as Answer } from '../../src/agent/agent.service.js';
import { KeyStore } from '../../src/auth/key-store.js';
import type { HttpServer } from '../../src/main.js';
import { RUNTIME, type Runtime } from '../../src/runtime.js';
import { startTestServer } from '../support/http-server.js';

let base: string;
let server: HttpServer;
let origin: string;
const key: Record<'alice' | 'bob' | 'noAgent', string> = { alice: '', bob: '', noAgent: '' };

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-conv-')));
  mkdirSync(path.join(base, 'ws/docs'), { recursive: true });
  writeFileSync(path.join(base, 'ws/notes.txt'), 'remember the milk\n');
  writeFileSync(path.join(base, 'ws/docs/guide.md'), '# Guide\n');
  const keys = new KeyStore(path.join(base, 'data/keys.json'));
  key.alice = (await keys.create({ client: 'alice', scopes: ['files:read', 'files:write', 'agent'] })).key;
  key.bob = (await keys.create({ client: 'bob', scopes: ['files:read', 'agent'] })).key;
  key.noAgent = (await keys.create({ client: 'carol', scopes: ['files:read'] })).key;
  server = await startTestServer(path.join(base, 'ws'), {
    auth: { mode: 'api-key' },
    dataDir: path.join(base, 'data'),
    agent: { limits: { maxPromptChars: 200 } },
  });
  origin = new URL(server.url).origin;
});

afterAll(async () => {
  await server?.close();
  rmSync(base, { recursive: true, force: true });
});

function rest(method: string, route: string, who: keyof typeof key, body?: unknown): Promise<Response> {
  return fetch(`${origin}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${key[who]}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
}

async function startConversation(who: keyof typeof key): Promise<string> {
  const response = await rest('POST', '/v1/conversations', who, {});
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

async function turnsOf(id: string, who: keyof typeof key = 'alice'): Promise<number> {
  const response = await rest('GET', `/v1/conversations/${id}`, who);
  return ((await response.json()) as { turns: unknown[] }).turns.length;
}

/** The audit log, once it holds a line with `needle`: records are appended asynchronously, so flush first. */
async function auditWith(needle: string): Promise<string> {
  await server.app.get<Runtime>(RUNTIME).audit.flush();
  const text = readFileSync(path.join(base, 'data/audit/audit.jsonl'), 'utf8');
  if (!text.includes(needle)) throw new Error(`no audit record with ${needle}`);
  return text;
}

async function connect(who: keyof typeof key): Promise<Client> {
  const client = new Client({ name: 'conversations-e2e', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(server.url), {
      requestInit: { headers: { authorization: `Bearer ${key[who]}` } },
    }),
  );
  return client;
}

describe('REST /v1/conversations', () => {
  it('answers a prompt with the answer, the steps and the usage, and keeps the turn', async () => {
    const id = await startConversation('alice');
    const response = await rest('POST', `/v1/conversations/${id}/messages`, 'alice', {
      prompt: 'read notes.txt',
    });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as Answer;
    expect(answer.conversation_id).toBe(id);
    expect(answer.answer).toContain('remember the milk');
    expect(answer.steps).toEqual([
      { tool: 'read_text_file', outcome: 'ok', summary: expect.stringContaining('notes.txt') },
    ]);
    expect(answer.usage).toMatchObject({ provider: 'rules', model_calls: 2 });

    const history = (await (await rest('GET', `/v1/conversations/${id}`, 'alice')).json()) as {
      id: string;
      turns: Array<{ seq: number; prompt: string; answer: string }>;
    };
    expect(history.id).toBe(id);
    expect(history.turns).toEqual([
      expect.objectContaining({ seq: 1, prompt: 'read notes.txt', answer: answer.answer }),
    ]);
  });

  it("lists only the caller's conversations, newest first, page by page", async () => {
    const ids = [
      await startConversation('bob'),
      await startConversation('bob'),
      await startConversation('bob'),
    ];
    const first = (await (await rest('GET', '/v1/conversations?limit=2', 'bob')).json()) as {
      items: Array<{ id: string }>;
      next_cursor?: string;
    };
    expect(first.items.map((c) => c.id)).toEqual([ids[2], ids[1]]);
    const cursor = encodeURIComponent(first.next_cursor as string);
    const second = (await (
      await rest('GET', `/v1/conversations?limit=2&cursor=${cursor}`, 'bob')
    ).json()) as {
      items: Array<{ id: string }>;
      next_cursor?: string;
    };
    expect(second.items.map((c) => c.id)).toEqual([ids[0]]);
    expect(second.next_cursor).toBeUndefined();
  });

  it('exports everything stored about a conversation as a JSON attachment', async () => {
    const id = await startConversation('alice');
    await rest('POST', `/v1/conversations/${id}/messages`, 'alice', { prompt: 'list files' });
    const response = await rest('GET', `/v1/conversations/${id}/export`, 'alice');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe(
      `attachment; filename="conversation-${id}.json"`,
    );
    const document = (await response.json()) as {
      format: string;
      conversation: { id: string; turns: unknown[] };
    };
    expect(document.format).toBe('bastion.conversation.v1');
    expect(document.conversation.id).toBe(id);
    expect(document.conversation.turns).toHaveLength(1);
  });

  it('erases a conversation at once and keeps an audit record without its content', async () => {
    const id = await startConversation('alice');
    await rest('POST', `/v1/conversations/${id}/messages`, 'alice', { prompt: 'read docs/guide.md' });
    expect((await rest('DELETE', `/v1/conversations/${id}`, 'alice')).status).toBe(204);
    expect((await rest('GET', `/v1/conversations/${id}`, 'alice')).status).toBe(404);
    expect((await rest('DELETE', `/v1/conversations/${id}`, 'alice')).status).toBe(404);
    const audit = await auditWith(`"action":"conversation.delete"`);
    expect(audit).toContain(id);
    expect(audit).not.toContain('# Guide');
    expect(audit).not.toContain('read docs/guide.md');
  });
});

describe('ownership', () => {
  let aliceId: string;
  beforeAll(async () => {
    aliceId = await startConversation('alice');
    await rest('POST', `/v1/conversations/${aliceId}/messages`, 'alice', { prompt: 'read notes.txt' });
  });

  it.each([
    ['read', 'GET', ''],
    ['continue', 'POST', '/messages'],
    ['export', 'GET', '/export'],
    ['delete', 'DELETE', ''],
  ])(
    "answers another principal's attempt to %s it with the same 404 as a missing one",
    async (_what, method, suffix) => {
      const body = method === 'POST' ? { prompt: 'list files' } : undefined;
      const theirs = await rest(method, `/v1/conversations/${aliceId}${suffix}`, 'bob', body);
      const missing = await rest(method, `/v1/conversations/${crypto.randomUUID()}${suffix}`, 'bob', body);
      expect(theirs.status).toBe(404);
      expect(theirs.headers.get('content-type')).toContain('application/problem+json');
      const problem = (await theirs.json()) as Record<string, unknown>;
      expect(problem).toEqual(await missing.json());
      expect(problem).toMatchObject({ status: 404, code: 'conversation_not_found', title: 'Not Found' });
      expect(await turnsOf(aliceId)).toBe(1);
    },
  );

  it("does not continue another principal's conversation over MCP either", async () => {
    const client = await connect('bob');
    const result = await client.callTool({
      name: 'converse',
      arguments: { prompt: 'list files', conversation_id: aliceId },
    });
    await client.close();
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain('No such conversation.');
    expect(await turnsOf(aliceId)).toBe(1);
  });

  it("keeps another principal's conversations out of the list", async () => {
    const page = (await (await rest('GET', '/v1/conversations?limit=100', 'bob')).json()) as {
      items: Array<{ id: string }>;
    };
    expect(page.items.map((c) => c.id)).not.toContain(aliceId);
  });

  it('needs the agent scope, over REST and over MCP', async () => {
    const response = await rest('POST', '/v1/conversations', 'noAgent', {});
    expect(response.status).toBe(403);
    const client = await connect('noAgent');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).not.toContain('converse');
    await client.close();
  });
});

describe('bad input changes nothing', () => {
  it.each([
    ['an empty prompt', { prompt: '' }, 'prompt should not be empty'],
    ['a blank prompt', { prompt: '   ' }, 'The prompt is empty'],
    ['a prompt over the size limit', { prompt: 'x'.repeat(201) }, 'the limit is 200'],
    ['a prompt of the wrong type', { prompt: 42 }, 'prompt must be a string'],
    ['an unknown field', { prompt: 'list files', model: 'gpt' }, 'property model should not exist'],
  ])('refuses %s with a problem document', async (_name, body, detail) => {
    const id = await startConversation('alice');
    const response = await rest('POST', `/v1/conversations/${id}/messages`, 'alice', body);
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(((await response.json()) as { detail: string }).detail).toContain(detail);
    expect(await turnsOf(id)).toBe(0);
  });

  it('refuses a malformed conversation id with 400 and an unknown one with 404', async () => {
    const malformed = await rest('POST', '/v1/conversations/not-a-uuid/messages', 'alice', {
      prompt: 'list files',
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { detail: string }).detail).toBe(
      'The conversation id must be a UUID.',
    );
    const unknown = await rest('GET', `/v1/conversations/${crypto.randomUUID()}`, 'alice');
    expect(unknown.status).toBe(404);
  });

  it('refuses a cursor it did not issue', async () => {
    const response = await rest('GET', '/v1/conversations?cursor=bogus', 'alice');
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe('invalid_cursor');
  });

  it('refuses bad converse arguments over MCP with -32602 and starts no conversation', async () => {
    const before = (
      (await (await rest('GET', '/v1/conversations?limit=100', 'bob')).json()) as { items: unknown[] }
    ).items.length;
    const client = await connect('bob');
    for (const args of [
      { prompt: '' },
      { prompt: 'x'.repeat(201) },
      { prompt: 'hi', conversation_id: 'nope' },
    ]) {
      await expect(client.callTool({ name: 'converse', arguments: args })).rejects.toMatchObject({
        code: -32602,
      });
    }
    const blank = await client.callTool({ name: 'converse', arguments: { prompt: '  ' } });
    expect(blank.isError).toBe(true);
    await client.close();
    const after = (
      (await (await rest('GET', '/v1/conversations?limit=100', 'bob')).json()) as { items: unknown[] }
    ).items.length;
    expect(after).toBe(before);
  });
});

describe('converse over MCP', () => {
  it('starts a conversation, continues it, and reports each step as progress', async () => {
    const client = await connect('alice');
    const progress: string[] = [];
    const first = await client.callTool(
      { name: 'converse', arguments: { prompt: 'list files in docs' } },
      { onprogress: (p) => progress.push(String(p.message)) },
    );
    const answer = first.structuredContent as unknown as Answer;
    expect(answer.answer).toContain('guide.md');
    expect(progress).toEqual(['list_directory: ok']);
    expect(JSON.parse((first.content as Array<{ text: string }>)[0]!.text)).toEqual(answer);

    const second = await client.callTool({
      name: 'converse',
      arguments: { prompt: 'read notes.txt', conversation_id: answer.conversation_id },
    });
    await client.close();
    expect((second.structuredContent as unknown as Answer).conversation_id).toBe(answer.conversation_id);
    expect(await turnsOf(answer.conversation_id)).toBe(2);
  });

  it('keeps a read-only conversation from writing even for a client that may write', async () => {
    const client = await connect('alice');
    const result = await client.callTool({
      name: 'converse',
      arguments: { prompt: 'list files', read_only: true },
    });
    await client.close();
    const id = (result.structuredContent as unknown as Answer).conversation_id;
    const history = (await (await rest('GET', `/v1/conversations/${id}`, 'alice')).json()) as {
      readOnly: boolean;
    };
    expect(history.readOnly).toBe(true);
  });
});

describe('OpenAPI', () => {
  it('describes every conversation route', async () => {
    const response = await fetch(`${origin}/openapi.json`, {
      headers: { authorization: `Bearer ${key.alice}` },
    });
    const document = (await response.json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(document.paths['/v1/conversations'] ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(document.paths['/v1/conversations/{id}'] ?? {}).sort()).toEqual(['delete', 'get']);
    expect(document.paths['/v1/conversations/{id}/messages']).toHaveProperty('post');
    expect(document.paths['/v1/conversations/{id}/export']).toHaveProperty('get');
  });
});
