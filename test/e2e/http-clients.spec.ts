import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { HttpServer } from '../../src/main.js';
import { startTestServer } from '../support/http-server.js';
import { createWorkspaceFixture, type WorkspaceFixture } from '../support/workspace-fixture.js';

const EXPECTED_TOOLS = [
  'converse',
  'create_directory',
  'delete_file',
  'directory_tree',
  'edit_file',
  'get_file_info',
  'grep_files',
  'list_allowed_directories',
  'list_directory',
  'list_directory_with_sizes',
  'move_file',
  'read_media_file',
  'read_multiple_files',
  'read_text_file',
  'search_files',
  'write_file',
];

interface AnyClient {
  listTools(): Promise<{
    tools: Array<{ name: string; annotations?: Record<string, unknown>; outputSchema?: unknown }>;
  }>;
  callTool(params: { name: string; arguments?: Record<string, unknown> }): Promise<unknown>;
  /** The same call with progress reporting (the two SDK generations take the options in different places). */
  callWithProgress?: (
    params: { name: string; arguments?: Record<string, unknown> },
    onprogress: (progress: { progress: number; message?: string }) => void,
  ) => Promise<unknown>;
  close(): Promise<void>;
}

type Result = {
  content: Array<{ type: string; text?: string }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
};

let ws: WorkspaceFixture;
let server: HttpServer;

beforeAll(async () => {
  ws = await createWorkspaceFixture();
  mkdirSync(path.join(ws.root, 'docs'));
  writeFileSync(path.join(ws.root, 'docs/guide.md'), '# Guide\nstep one\nstep two\n');
  writeFileSync(path.join(ws.root, 'pixel.png'), Buffer.from('89504e470d0a1a0a', 'hex'));
  mkdirSync(path.join(ws.root, 'many'));
  for (let i = 0; i < 250; i++) writeFileSync(path.join(ws.root, 'many', `f${i}.txt`), `entry ${i}\n`);
  server = await startTestServer(ws.root);
});
afterAll(async () => {
  await server.close();
  ws.cleanup();
});

const clients: Array<[string, () => Promise<AnyClient>]> = [
  [
    'SDK v2 client (2026-07-28)',
    async () => {
      const client = new ClientV2(
        { name: 'e2e-v2', version: '1.0.0' },
        { versionNegotiation: { mode: 'auto' } },
      );
      await client.connect(new TransportV2(new URL(server.url)));
      expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
      return Object.assign(client as unknown as AnyClient, {
        callWithProgress: (params, onprogress) => client.callTool(params, { onprogress }),
      } satisfies Partial<AnyClient>);
    },
  ],
  [
    'SDK v1 client (2025 revisions, as mcp-remote)',
    async () => {
      const client = new ClientV1({ name: 'e2e-v1', version: '1.0.0' });
      await client.connect(new TransportV1(new URL(server.url)));
      return Object.assign(client as unknown as AnyClient, {
        callWithProgress: (params, onprogress) => client.callTool(params, undefined, { onprogress }),
      } satisfies Partial<AnyClient>);
    },
  ],
];

describe.each(clients)('%s', (_label, connect) => {
  let client: AnyClient;
  beforeAll(async () => {
    client = await connect();
  });
  afterAll(async () => {
    await client.close();
  });

  const call = async (name: string, args: Record<string, unknown>) =>
    (await client.callTool({ name, arguments: args })) as Result;

  it('lists every tool with annotations and output schemas', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(EXPECTED_TOOLS);
    for (const tool of tools) {
      // Only the agent reaches beyond the workspace (to its model).
      expect(tool.annotations).toMatchObject({ openWorldHint: tool.name === 'converse' });
      expect(typeof tool.annotations?.readOnlyHint).toBe('boolean');
      expect(tool.outputSchema).toBeDefined();
    }
  });

  it('reads, writes, edits and lists through the real transport', async () => {
    const read = await call('read_text_file', { path: 'docs/guide.md', head: 2 });
    expect(read.content[0]?.text).toBe('# Guide\nstep one');
    expect(read.structuredContent).toEqual({ content: '# Guide\nstep one' });

    const name = `note-${Math.random().toString(36).slice(2)}.txt`;
    expect((await call('write_file', { path: name, content: 'a\r\nb\r\n' })).isError).toBeFalsy();
    const edited = await call('edit_file', { path: name, edits: [{ oldText: 'b\n', newText: 'c\n' }] });
    expect(edited.content[0]?.text).toContain('+c');
    expect(readFileSync(path.join(ws.root, name), 'utf8')).toBe('a\r\nc\r\n');

    const listing = await call('list_directory', { path: '.' });
    expect(listing.content[0]?.text).toContain('[DIR] docs');
    const media = await call('read_media_file', { path: 'pixel.png' });
    expect(media.content[0]).toMatchObject({ type: 'image', mimeType: 'image/png' });
  });

  it('streams progress before the result when the caller asks for it', async () => {
    const updates: Array<{ progress: number; message?: string }> = [];
    const result = (await client.callWithProgress!(
      { name: 'grep_files', arguments: { path: 'many', pattern: 'entry 249$' } },
      (update) => updates.push(update),
    )) as Result;
    expect(result.structuredContent).toMatchObject({ filesSearched: 250 });
    expect(updates.map((u) => u.progress)).toEqual([100, 200]);
    expect(updates[0]?.message).toBe('100 files searched');
  });

  it('answers a sandbox refusal as a tool error that names only the client path', async () => {
    const result = await call('read_text_file', { path: '../../etc/passwd' });
    expect(result.isError).toBe(true);
    expect(result.content[0]?.text).toContain('"../../etc/passwd"');
    expect(result.content[0]?.text).not.toContain(ws.base);
  });

  it('rejects an unknown tool and invalid arguments with JSON-RPC -32602', async () => {
    await expect(client.callTool({ name: 'no_such_tool', arguments: {} })).rejects.toMatchObject({
      code: -32602,
    });
    await expect(client.callTool({ name: 'read_text_file', arguments: { path: 42 } })).rejects.toMatchObject({
      code: -32602,
    });
  });
});

describe('resource updates over HTTP', () => {
  it('declares no subscriptions to 2025-era clients: stateless HTTP has no channel to deliver them', async () => {
    const client = new ClientV1({ name: 'e2e-v1', version: '1.0.0' });
    await client.connect(new TransportV1(new URL(server.url)));
    try {
      expect(client.getServerCapabilities()?.resources?.subscribe).toBeFalsy();
    } finally {
      await client.close();
    }
  });

  it('streams resources/updated on a 2026-07-28 listen stream when a subscribed file changes', async () => {
    const client = new ClientV2(
      { name: 'e2e-listen', version: '1.0.0' },
      { versionNegotiation: { mode: 'auto' } },
    );
    await client.connect(new TransportV2(new URL(server.url)));
    const updated: string[] = [];
    client.setNotificationHandler('notifications/resources/updated', (n) => void updated.push(n.params.uri));
    const subscription = await client.listen({ resourceSubscriptions: ['workspace:///docs/guide.md'] });
    try {
      expect(subscription.honoredFilter.resourceSubscriptions).toEqual(['workspace:///docs/guide.md']);
      writeFileSync(path.join(ws.root, 'docs/guide.md'), '# Guide\nrewritten\n');
      const started = Date.now();
      while (updated.length === 0 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 20));
      expect(updated).toEqual(['workspace:///docs/guide.md']);
    } finally {
      await subscription.close();
      await client.close();
    }
  });
});
