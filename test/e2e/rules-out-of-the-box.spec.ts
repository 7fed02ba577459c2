/**
 * `bastion serve` with no configuration at all: no flags but the port, no config file, no BASTION_*,
 * ANTHROPIC_* or OPENAI_* variables. The defaults (./workspace, ./data, the rules provider) resolve in the
 * working directory, and plain workspace requests get answered without any model.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { ConverseAnswer as Answer } from '../../src/agent/agent.service.js';

const CLI = path.resolve('dist/cli.js');
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const CONFIG_VARIABLE = /^(?:BASTION|ANTHROPIC|OPENAI)_/;

let base: string;
let child: ChildProcess;
let exited: Promise<number | null>;
let stderr = '';
let client: Client;

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-out-of-the-box-')));
  mkdirSync(path.join(base, 'workspace/docs'), { recursive: true });
  writeFileSync(path.join(base, 'workspace/notes.txt'), 'remember the milk\nTODO: buy bread\n');
  writeFileSync(path.join(base, 'workspace/docs/guide.md'), '# Guide\n');
  writeFileSync(path.join(base, 'workspace/docs/faq.md'), '# FAQ\n');

  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !CONFIG_VARIABLE.test(name)));
  child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
    cwd: base,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), START_TIMEOUT_MS);
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /serving MCP at (http:\/\/\S+\/mcp)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
  });
  client = new Client({ name: 'out-of-the-box-e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
});

afterAll(async () => {
  await client?.close();
  // By this test's own child PID only.
  if (child?.pid !== undefined && child.exitCode === null) {
    process.kill(child.pid, 'SIGTERM');
    const timer = setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
  rmSync(base, { recursive: true, force: true });
});

async function converse(prompt: string): Promise<Answer> {
  const result = await client.callTool({ name: 'converse', arguments: { prompt } });
  expect(result.isError).toBeFalsy();
  return result.structuredContent as unknown as Answer;
}

describe('a fresh server with no configuration', () => {
  it.each([
    ['list files', 'list_directory', ['[DIR] docs', '[FILE] notes.txt']],
    ['show the tree of docs', 'directory_tree', ['guide.md', 'faq.md']],
    ['read notes.txt', 'read_text_file', ['remember the milk', 'TODO: buy bread']],
    ['find files named *.md', 'search_files', ['docs/guide.md', 'docs/faq.md']],
    ['search for TODO', 'grep_files', ['notes.txt:2: TODO: buy bread']],
    ['info on notes.txt', 'get_file_info', ['About notes.txt', 'size: 34', 'isFile: true']],
  ])('answers "%s" with the rules provider through %s', async (prompt, tool, expected) => {
    const answer = await converse(prompt);
    expect(answer.steps).toEqual([{ tool, outcome: 'ok', summary: expect.stringContaining(tool) }]);
    for (const text of expected) expect(answer.answer).toContain(text);
    // One request proposing the call, one wording its result.
    expect(answer.usage).toMatchObject({ provider: 'rules', model_calls: 2 });
  });

  it('says that no language model is configured, and how to configure one, for anything else', async () => {
    const answer = await converse('write a poem about the sea');
    expect(answer.steps).toEqual([]);
    expect(answer.answer).toContain('No language model is configured');
    expect(answer.answer).toContain('ANTHROPIC_API_KEY');
    expect(answer.usage.provider).toBe('rules');
  });

  it('keeps its state under ./data in the working directory', () => {
    expect(existsSync(path.join(base, 'data', 'conversations.db'))).toBe(true);
  });
});
