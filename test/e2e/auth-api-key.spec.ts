import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { KeyStore } from '../../src/auth/key-store.js';
import type { HttpServer } from '../../src/main.js';
import { postMcp, startTestServer } from '../support/http-server.js';

type Result = { content: Array<{ type: string; text?: string }>; isError?: boolean };

let base: string;
let server: HttpServer;
let keys: KeyStore;
const key: Record<string, string> = {};

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-auth-')));
  for (const dir of ['shared', 'tenant-a', 'tenant-b']) mkdirSync(path.join(base, dir));
  writeFileSync(path.join(base, 'shared/notes.txt'), 'shared notes\n');
  writeFileSync(path.join(base, 'tenant-a/a.txt'), 'tenant A\n');
  writeFileSync(path.join(base, 'tenant-b/b.txt'), 'tenant B secret\n');
  keys = new KeyStore(path.join(base, 'data/keys.json'));
  const issue = async (name: string, spec: Parameters<KeyStore['create']>[0]): Promise<void> => {
    key[name] = (await keys.create(spec)).key;
  };
  await issue('reader', { client: 'reader', scopes: ['files:read'] });
  await issue('writer', { client: 'writer', scopes: ['files:read', 'files:write'] });
  await issue('tenantA', {
    client: 'tenant-a',
    scopes: ['files:read'],
    workspace: path.join(base, 'tenant-a'),
  });
  await issue('revoked', { client: 'old', scopes: ['files:read'] });
  const revokedId = keys.list().find((k) => k.client === 'old')?.id as string;
  await keys.revoke(revokedId);
  server = await startTestServer(path.join(base, 'shared'), {
    auth: { mode: 'api-key' },
    dataDir: path.join(base, 'data'),
  });
});

afterAll(async () => {
  await server?.close();
  rmSync(base, { recursive: true, force: true });
});

function post(body: unknown, authorization?: string): Promise<Response> {
  return postMcp(server.url, body, authorization);
}

const toolsList = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };

async function connect(apiKey: string): Promise<Client> {
  const client = new Client({ name: 'auth-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(server.url), {
      requestInit: { headers: { authorization: `Bearer ${apiKey}` } },
    }),
  );
  return client;
}

describe('API keys over HTTP', () => {
  it('answers a request without credentials with 401, a Bearer challenge and a JSON-RPC error body', async () => {
    const response = await post(toolsList);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="bastion"');
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/Authorization: Bearer/);
  });

  it.each([
    ['an unknown key', `Bearer bst_000000000000_${'a'.repeat(43)}`],
    ['a key with a wrong secret', () => `Bearer ${key.reader?.slice(0, -4)}AAAA`],
    ['a revoked key', () => `Bearer ${key.revoked}`],
    ['a malformed header', 'Basic dXNlcjpwYXNz'],
  ])('refuses %s with 401 invalid_token', async (_name, header) => {
    const response = await post(toolsList, typeof header === 'function' ? header() : header);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(
      /^Bearer realm="bastion", error="invalid_token"/,
    );
  });

  it('serves a valid key through the official SDK client, listing only the tools its scopes allow', async () => {
    const client = await connect(key.reader as string);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('read_text_file');
      expect(names).not.toContain('write_file');
      const read = (await client.callTool({
        name: 'read_text_file',
        arguments: { path: 'notes.txt' },
      })) as Result;
      expect(read.content[0]?.text).toBe('shared notes\n');
    } finally {
      await client.close();
    }
  });

  it('refuses a tool outside the key scopes and changes nothing', async () => {
    const client = await connect(key.reader as string);
    try {
      const result = (await client.callTool({
        name: 'write_file',
        arguments: { path: 'new.txt', content: 'x' },
      })) as Result;
      expect(result.isError).toBe(true);
      expect(result.content[0]?.text).toMatch(/files:write/);
    } finally {
      await client.close();
    }
    const writer = await connect(key.writer as string);
    try {
      const check = (await writer.callTool({
        name: 'get_file_info',
        arguments: { path: 'new.txt' },
      })) as Result;
      expect(check.isError).toBe(true);
    } finally {
      await writer.close();
    }
  });

  it('keeps a key bound to workspace A out of workspace B and out of the shared root', async () => {
    const client = await connect(key.tenantA as string);
    try {
      const own = (await client.callTool({ name: 'read_text_file', arguments: { path: 'a.txt' } })) as Result;
      expect(own.content[0]?.text).toBe('tenant A\n');
      for (const target of [
        '../tenant-b/b.txt',
        path.join(base, 'tenant-b/b.txt'),
        '../shared/notes.txt',
        'notes.txt',
      ]) {
        const result = (await client.callTool({
          name: 'read_text_file',
          arguments: { path: target },
        })) as Result;
        expect(result.isError).toBe(true);
        expect(JSON.stringify(result)).not.toContain('tenant B secret');
      }
    } finally {
      await client.close();
    }
  });

  it('refuses a key revoked while the server runs, from the next request on', async () => {
    const { key: fresh, record } = await keys.create({ client: 'rotating', scopes: ['files:read'] });
    expect((await post(toolsList, `Bearer ${fresh}`)).status).toBe(200);
    await new KeyStore(keys.file).revoke(record.id);
    expect((await post(toolsList, `Bearer ${fresh}`)).status).toBe(401);
  });

  it('serves no OAuth discovery in API-key mode: unknown /.well-known paths are a JSON 404', async () => {
    for (const wellKnown of [
      'oauth-protected-resource',
      'oauth-protected-resource/mcp',
      'oauth-authorization-server',
    ]) {
      const response = await fetch(new URL(`/.well-known/${wellKnown}`, server.url));
      expect(response.status).toBe(404);
      expect(response.headers.get('content-type')).toMatch(/application\/json/);
      expect(await response.json()).toEqual({ error: 'not_found', message: 'Not found.' });
    }
  });
});
