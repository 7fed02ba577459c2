import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as StdioTransportV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { createWorkspaceFixture, type WorkspaceFixture } from '../support/workspace-fixture.js';

const CLI = path.resolve('dist/cli.js');
type Result = {
  content: Array<{ type: string; text?: string }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
};

let ws: WorkspaceFixture;
beforeEach(async () => {
  ws = await createWorkspaceFixture();
  mkdirSync(path.join(ws.root, 'project/src'), { recursive: true });
  writeFileSync(path.join(ws.root, 'project/src/app.ts'), 'console.log("hi");\n');
  writeFileSync(path.join(ws.root, 'top.txt'), 'top\n');
});
afterEach(() => {
  ws.cleanup();
  rmSync(dataDir(), { recursive: true, force: true });
});

/** Bastion's state for the test's server, beside (never inside) the workspace. */
const dataDir = (): string => `${ws.root}-data`;

async function connect(args: string[], options: { roots?: string[] } = {}): Promise<Client> {
  const client = new Client(
    { name: 'stdio-e2e', version: '1.0.0' },
    options.roots ? { capabilities: { roots: {} } } : {},
  );
  if (options.roots) {
    const roots = options.roots;
    client.setRequestHandler('roots/list', () => ({ roots: roots.map((uri) => ({ uri })) }));
  }
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'stdio', '--data-dir', dataDir(), ...args],
      stderr: 'pipe',
    }),
  );
  return client;
}

describe('bastion stdio', () => {
  it('serves the same tools over stdio and answers calls', async () => {
    const client = await connect(['--workspace', ws.root]);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain('write_file');
      const result = (await client.callTool({
        name: 'read_text_file',
        arguments: { path: 'project/src/app.ts' },
      })) as Result;
      expect(result.content[0]?.text).toBe('console.log("hi");\n');
      const escape = (await client.callTool({
        name: 'read_text_file',
        arguments: { path: '/etc/passwd' },
      })) as Result;
      expect(escape.isError).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('drops the write tools with --read-only', async () => {
    const client = await connect(['--workspace', ws.root, '--read-only']);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).not.toContain('write_file');
      expect(names).not.toContain('delete_file');
      const refused = (await client.callTool({
        name: 'delete_file',
        arguments: { path: 'top.txt' },
      })) as Result;
      expect(refused.isError).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('lets client roots narrow the workspace but never widen it', async () => {
    const inside = pathToFileURL(path.join(ws.root, 'project')).href;
    const outside = pathToFileURL(ws.outside).href;
    const client = await connect(['--workspace', ws.root], { roots: [inside, outside] });
    try {
      let dirs: Result | undefined;
      for (let i = 0; i < 50; i++) {
        dirs = (await client.callTool({ name: 'list_allowed_directories', arguments: {} })) as Result;
        if ((dirs.structuredContent?.directories as string[])[0] !== '.') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(dirs?.structuredContent?.directories).toEqual(['project']);
      const sibling = (await client.callTool({
        name: 'read_text_file',
        arguments: { path: 'top.txt' },
      })) as Result;
      expect(sibling.isError).toBe(true);
      const own = (await client.callTool({
        name: 'read_text_file',
        arguments: { path: 'project/src/app.ts' },
      })) as Result;
      expect(own.isError).toBeFalsy();
    } finally {
      await client.close();
    }
  });

  it('writes nothing but protocol messages to stdout', async () => {
    const child = spawn(process.execPath, [CLI, 'stdio', '--workspace', ws.root, '--data-dir', dataDir()], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, BASTION_LOG_LEVEL: 'debug' },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`);
    send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'read_text_file', arguments: { path: 'nope.txt' } },
    });
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (stdout.split('\n').filter(Boolean).length >= 2) {
          clearInterval(check);
          resolve();
        }
      }, 10);
    });
    child.stdin.end();
    await new Promise((resolve) => child.on('exit', resolve));
    const lines = stdout.split('\n').filter(Boolean);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
    expect(lines.map((l) => JSON.parse(l).id)).toEqual([1, 2]);
    // Calls over stdio go through the same door: audited like any other.
    const audit = readFileSync(path.join(dataDir(), 'audit', 'audit.jsonl'), 'utf8');
    expect(JSON.parse(audit.trim().split('\n').at(-1) as string)).toMatchObject({
      kind: 'tool_call',
      actor: 'local',
      action: 'read_text_file',
      target: 'nope.txt',
      outcome: 'refused',
      code: 'not_found',
    });
  });

  it('sends resources/updated for a subscribed file until unsubscribed (2025 revisions)', async () => {
    const client = new ClientV1({ name: 'stdio-subscriber', version: '1.0.0' });
    await client.connect(
      new StdioTransportV1({
        command: process.execPath,
        args: [CLI, 'stdio', '--workspace', ws.root, '--data-dir', dataDir()],
        stderr: 'pipe',
      }),
    );
    try {
      expect(client.getServerCapabilities()?.resources?.subscribe).toBe(true);
      const updated: string[] = [];
      client.setNotificationHandler(
        ResourceUpdatedNotificationSchema,
        (n) => void updated.push(n.params.uri),
      );
      await client.subscribeResource({ uri: 'workspace:///top.txt' });
      await client.callTool({ name: 'write_file', arguments: { path: 'top.txt', content: 'changed\n' } });
      await waitFor(() => updated.length > 0);
      expect(updated).toEqual(['workspace:///top.txt']);

      await client.unsubscribeResource({ uri: 'workspace:///top.txt' });
      await client.callTool({ name: 'write_file', arguments: { path: 'top.txt', content: 'again\n' } });
      // A barrier rather than a pause: a file in the same directory, changed after, is reported after any
      // report of that write would have been (one directory's events arrive in order, with one debounce).
      writeFileSync(path.join(ws.root, 'barrier.txt'), 'barrier\n');
      await client.subscribeResource({ uri: 'workspace:///barrier.txt' });
      await client.callTool({ name: 'write_file', arguments: { path: 'barrier.txt', content: 'moved\n' } });
      await waitFor(() => updated.length > 1);
      expect(updated).toEqual(['workspace:///top.txt', 'workspace:///barrier.txt']);

      await expect(client.subscribeResource({ uri: 'workspace:///missing.txt' })).rejects.toThrow(
        /not found/i,
      );
      await expect(client.subscribeResource({ uri: 'workspace:///../../etc/passwd' })).rejects.toThrow();
    } finally {
      await client.close();
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
