import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnServer, type CliServer } from '../support/cli-server.js';
import { freePort } from '../support/processes.js';

const CLI = path.resolve('dist/cli.js');
const NOTE = 'Remember the milk, then the eggs.';

let base: string;
let open: CliServer;
let guarded: CliServer;
let key: string;

/** The environment of the test run, without the chat command's own variables. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('BASTION_URL' in extra)) delete env.BASTION_URL;
  if (!('BASTION_API_KEY' in extra)) delete env.BASTION_API_KEY;
  return env;
}

/** Runs `bastion chat ARGS` with LINES piped on stdin, until it exits. */
function chat(
  args: string[],
  lines: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'chat', ...args], {
    env: cleanEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(lines.map((line) => `${line}\n`).join(''));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-chat-')));
  const ws = path.join(base, 'ws');
  mkdirSync(path.join(ws, 'docs'), { recursive: true });
  writeFileSync(path.join(ws, 'notes.txt'), `${NOTE}\n`);
  writeFileSync(path.join(ws, 'docs', 'guide.md'), '# Guide\n');

  // An API key for the guarded server, created as an operator would.
  const guardedData = path.join(base, 'data-guarded');
  const created = await promisify(execFile)(process.execPath, [
    CLI,
    'keys',
    'create',
    '--client',
    'chat-e2e',
    '--scopes',
    'files:read,agent',
    '--data-dir',
    guardedData,
  ]);
  key = created.stdout.trimEnd().split('\n').at(-1) as string;

  [open, guarded] = await Promise.all([
    spawnServer(ws, path.join(base, 'data-open')),
    spawnServer(ws, guardedData, { BASTION_AUTH: 'api-key' }),
  ]);
}, 30_000);

afterAll(async () => {
  await Promise.all([open?.stop(), guarded?.stop()]);
  rmSync(base, { recursive: true, force: true });
});

describe('bastion chat', () => {
  it('holds a conversation from piped prompts: steps, answers, history, export and /new', async () => {
    const exported = path.join(base, 'export.json');
    const result = await chat(
      ['--url', open.url],
      ['list files', 'read notes.txt', '/history', `/export ${exported}`, '/new', 'list files', '/quit'],
    );
    expect(result.stderr).not.toContain('error:');
    expect(result.code).toBe(0);
    const out = result.stdout;

    // Each step is printed before the answer it led to.
    expect(out).toContain('  · list_directory: ok');
    expect(out.indexOf('  · read_text_file: ok')).toBeGreaterThan(-1);
    expect(out.indexOf('  · read_text_file: ok')).toBeLessThan(out.indexOf(NOTE));
    expect(out).toMatch(/rules\/rules · \d+ model calls?/);

    // The id is printed once per conversation: after the first answer, and again after /new.
    const ids = [...out.matchAll(/^conversation ([0-9a-f-]{36})$/gm)].map((m) => m[1] as string);
    expect(ids).toHaveLength(2);
    const [first, second] = ids;
    expect(second).not.toBe(first);

    const history = out.slice(out.indexOf('you> /history'), out.indexOf('you> /export'));
    expect(history).toContain(`conversation ${first} · 2 turns`);
    expect(history).toMatch(/turn 1 · .*\nyou> list files\n {2}· list_directory: ok/);
    expect(history).toMatch(/turn 2 · .*\nyou> read notes.txt\n {2}· read_text_file: ok/);
    expect(history).toContain(NOTE);

    expect(out).toContain(`exported conversation ${first} to ${exported}`);
    expect(statSync(exported).mode & 0o777).toBe(0o600);
    const document = JSON.parse(readFileSync(exported, 'utf8')) as {
      conversation: { id: string; turns: Array<{ seq: number; prompt: string; answer: string }> };
    };
    expect(document.conversation.id).toBe(first);
    expect(document.conversation.turns.map((t) => [t.seq, t.prompt])).toEqual([
      [1, 'list files'],
      [2, 'read notes.txt'],
    ]);
    expect(document.conversation.turns[1]?.answer).toContain(NOTE);
  });

  it('prints a tool error and keeps going: an unknown conversation, then /help', async () => {
    const result = await chat(
      ['--url', open.url, '--conversation', '00000000-0000-4000-8000-000000000000'],
      ['list files', '/help'],
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('error: No such conversation.');
    expect(result.stdout).toContain('/export [file]');
  });

  it('says clearly that a wrong key was refused, and how to pass one; a valid key from the environment works', async () => {
    const refused = await chat(['--url', guarded.url, '--key', `${key.slice(0, -4)}AAAA`], ['list files']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^error: The server refused the API key \(HTTP 401\)\. .*--key.*BASTION_API_KEY/m,
    );
    expect(refused.stdout).not.toContain('list_directory');

    const accepted = await chat([], ['list files'], { BASTION_URL: guarded.url, BASTION_API_KEY: key });
    expect(accepted.stderr).not.toContain('error:');
    expect(accepted.code).toBe(0);
    expect(accepted.stdout).toContain('  · list_directory: ok');
  });

  it('exits 1 saying that no server answers at an unreachable URL', async () => {
    const url = `http://127.0.0.1:${await freePort()}/mcp`;
    const result = await chat(['--url', url], ['list files']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`error: No server answers at ${url}`);
  });
});
