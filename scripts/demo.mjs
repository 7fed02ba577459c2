// A scripted tour of Bastion: `npm run demo` (builds first).
//
// Creates a throwaway workspace and data directory, starts `bastion serve` on a free loopback port, talks to
// it through the real terminal client (`bastion chat`, prompts piped on stdin), then stops the server by its
// PID and removes the temporary directories. Exits non-zero if any step fails.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(REPO, 'dist', 'cli.js');
const DEADLINE_MS = 60_000;

const PROMPTS = [
  'list the files',
  'show the tree of notes',
  'read notes/todo.md',
  'search for TODO',
  'find files named *.ts',
  'info on README.md',
  '/history',
  'please refactor app.ts',
  '/quit',
];

/** What the transcript must show for the demo to count as a success. */
const EXPECTED = [
  'list_directory: ok',
  'directory_tree: ok',
  'read_text_file: ok',
  'grep_files: ok',
  'search_files: ok',
  'get_file_info: ok',
  'Write the release notes',
  'No language model is configured',
];

const FILES = {
  'README.md': '# Acme notes\n\nA tiny project to show Bastion: notes, a to-do list and some TypeScript.\n',
  'notes/todo.md':
    '# To do\n\n- TODO: Write the release notes\n- TODO: Add a dark mode\n- done: set up the repository\n',
  'notes/ideas.md': '# Ideas\n\n- A command line client\n- TODO: Ask users what they miss\n',
  'src/app.ts':
    'export function greet(name: string): string {\n  // TODO: localise the greeting\n  return `Hello, ${name}!`;\n}\n',
};

// The demo's server and client ignore the caller's BASTION_* settings (an API-key mode or another model
// provider would change the script's outcome).
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('BASTION_')));

const started = performance.now();
const bold = process.stdout.isTTY && !process.env.NO_COLOR;
const banner = (text) => process.stdout.write(bold ? `\n\x1b[1m==> ${text}\x1b[22m\n` : `\n==> ${text}\n`);
const failures = [];
/** What to clean up if the deadline passes. */
let server;
let base;

function startServer(workspace, dataDir) {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--workspace', workspace, '--data-dir', dataDir, '--port', '0'],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${stderr}`)), 15_000);
    child.stderr.on('data', (chunk) => {
      stderr += chunk.toString();
      // `--port 0` takes a free port; the server announces the one it got.
      const match = /serving MCP at (http:\/\/\S+\/mcp)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    exited.then(({ code }) => reject(new Error(`the server exited (${code}) before serving:\n${stderr}`)));
  });
  return { child, url, exited, stderr: () => stderr };
}

function chat(url, prompts) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'chat', '--url', url], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk.toString();
      process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk.toString();
      process.stdout.write(chunk);
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(prompts.map((p) => `${p}\n`).join(''));
  });
}

async function stop(server) {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return server.exited;
  server.child.kill('SIGTERM');
  const timeout = new Promise((resolve) => setTimeout(() => resolve(undefined), 10_000).unref());
  const result = await Promise.race([server.exited, timeout]);
  if (result) return result;
  server.child.kill('SIGKILL');
  failures.push('the server did not stop within 10 s of SIGTERM');
  return server.exited;
}

async function main() {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` (or `npm run demo`).');
  base = mkdtempSync(path.join(os.tmpdir(), 'bastion-demo-'));
  const workspace = path.join(base, 'workspace');
  const dataDir = path.join(base, 'data');
  try {
    banner(`Creating a sample workspace in ${workspace}`);
    for (const [name, content] of Object.entries(FILES)) {
      mkdirSync(path.dirname(path.join(workspace, name)), { recursive: true });
      writeFileSync(path.join(workspace, name), content);
      process.stdout.write(`    ${name}\n`);
    }

    banner('Starting the server: bastion serve --port 0 (default model provider: rules, no LLM needed)');
    server = startServer(workspace, dataDir);
    const url = await server.url;
    process.stdout.write(`    serving MCP at ${url} (PID ${server.child.pid})\n`);

    banner(
      `Chatting with the SecureAgent: bastion chat --url ${url}, ${PROMPTS.length} lines piped on stdin`,
    );
    const transcript = await chat(url, PROMPTS);
    if (transcript.code !== 0) failures.push(`bastion chat exited with ${transcript.code}`);
    for (const line of transcript.stderr.split('\n').filter((l) => l.startsWith('error:')))
      failures.push(`bastion chat reported "${line}"`);
    for (const expected of EXPECTED)
      if (!transcript.stdout.includes(expected)) failures.push(`the transcript lacks "${expected}"`);

    banner(`Stopping the server (SIGTERM to PID ${server.child.pid})`);
    const { code, signal } = await stop(server);
    process.stdout.write(`    exited with ${signal ?? code}\n`);
    if (code !== 0) failures.push(`the server exited with ${signal ?? code}:\n${server.stderr()}`);
  } finally {
    if (server) await stop(server);
    rmSync(base, { recursive: true, force: true });
  }
}

const deadline = setTimeout(() => {
  process.stderr.write(`demo: still running after ${DEADLINE_MS / 1000} s, giving up\n`);
  server?.child.kill('SIGKILL');
  if (base) rmSync(base, { recursive: true, force: true });
  process.exit(1);
}, DEADLINE_MS);
deadline.unref();

main().then(
  () => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (failures.length > 0) {
      banner(`Demo FAILED after ${seconds} s`);
      for (const failure of failures) process.stderr.write(`demo: ${failure}\n`);
      process.exitCode = 1;
    } else {
      banner(`Done in ${seconds} s; temporary files removed.`);
    }
  },
  (error) => {
    process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
