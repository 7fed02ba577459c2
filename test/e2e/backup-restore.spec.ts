/**
 * Backup and recovery with real processes: a server in api-key mode holds a conversation of two turns,
 * `bastion backup` copies its state while it serves, the data directory is lost, `bastion restore` brings
 * it back and a new server continues the conversation with the old key. A damaged backup, a data directory
 * that holds state and one a running server uses are refused without a change.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { spawnServer, type CliServer } from '../support/cli-server.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/cli.js');
const TEST_TIMEOUT_MS = 90_000;
/** Turns sent while a backup runs, spread over a few conversations. */
const BUSY_TURNS = 24;

interface Turn {
  seq: number;
  prompt: string;
  answer: string;
}

let base: string;
let workspace: string;
const started: CliServer[] = [];
/** The backup the first test takes of a running server; the refusal tests start from it. */
let backup: string | undefined;
let damagedTarget: Promise<string> | undefined;

beforeAll(() => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-backup-')));
  workspace = path.join(base, 'ws');
  mkdirSync(workspace);
  writeFileSync(path.join(workspace, 'notes.txt'), 'remember the milk\n');
  writeFileSync(path.join(workspace, 'todo.txt'), 'water the plants\n');
  for (let i = 1; i <= BUSY_TURNS; i++) writeFileSync(path.join(workspace, `file-${i}.txt`), `marker-${i}\n`);
});

afterAll(async () => {
  // Only the servers this file started, by their own handles; a failed test may have left one up.
  for (const server of started) if (server.child.exitCode === null) server.child.kill('SIGKILL');
  await Promise.all(started.map((server) => server.exited));
  rmSync(base, { recursive: true, force: true });
});

/** Runs `node dist/cli.js ARGS...` to its end. */
async function bastion(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      timeout: 30_000,
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function createKey(dataDir: string): Promise<string> {
  const created = await bastion([
    'keys',
    'create',
    '--client',
    'backup-e2e',
    '--scopes',
    'files:read,agent',
    '--data-dir',
    dataDir,
  ]);
  expect(created.code).toBe(0);
  return created.stdout.trim().split('\n').at(-1) as string;
}

async function start(dataDir: string): Promise<CliServer> {
  const server = await spawnServer(workspace, dataDir, { BASTION_AUTH: 'api-key' });
  started.push(server);
  return server;
}

function api(server: CliServer, key: string, method: string, route: string, body?: unknown) {
  return fetch(new URL(route, server.url), {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
}

async function newConversation(server: CliServer, key: string): Promise<string> {
  const response = await api(server, key, 'POST', '/v1/conversations', {});
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

async function say(server: CliServer, key: string, id: string, prompt: string) {
  const response = await api(server, key, 'POST', `/v1/conversations/${id}/messages`, { prompt });
  expect(response.status).toBe(200);
  return (await response.json()) as { conversation_id: string; answer: string };
}

async function turnsOf(server: CliServer, key: string, id: string): Promise<Turn[]> {
  const response = await api(server, key, 'GET', `/v1/conversations/${id}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { turns: Turn[] }).turns;
}

function auditRecords(file: string): Array<{ action: string; target?: string }> {
  return readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as { action: string; target?: string });
}

function recordsVerified(stdout: string): number {
  const match = /^ok: (\d+) records?, chain intact/.exec(stdout);
  expect(match).not.toBeNull();
  return Number(match?.[1]);
}

/** Every file under a directory with its mode and SHA-256, to tell that nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) walk(full);
      else {
        const mode = (statSync(full).mode & 0o777).toString(8);
        files[path.relative(dir, full)] =
          `${mode} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`;
      }
    }
  };
  walk(dir);
  return files;
}

function modeOf(file: string): string {
  return (statSync(file).mode & 0o777).toString(8);
}

/** A data directory restored from the first test's backup, so that it holds state. */
async function populated(name: string): Promise<string> {
  expect(backup).toBeDefined();
  const dataDir = path.join(base, name);
  const restored = await bastion(['restore', '--from', backup as string, '--data-dir', dataDir]);
  expect(restored.code).toBe(0);
  return dataDir;
}

describe('bastion backup and bastion restore', () => {
  it(
    'brings back a lost data directory from a backup taken while the server ran: same key, same conversation',
    async () => {
      const dataDir = path.join(base, 'data');
      const key = await createKey(dataDir);
      const first = await start(dataDir);
      const id = await newConversation(first, key);
      expect((await say(first, key, id, 'read notes.txt')).answer).toContain('remember the milk');
      expect((await say(first, key, id, 'list files')).answer).toContain('notes.txt');
      const before = await turnsOf(first, key, id);
      expect(before.map((turn) => turn.seq)).toEqual([1, 2]);

      const out = path.join(base, 'backups', 'full');
      const taken = await bastion(['backup', '--out', out, '--data-dir', dataDir]);
      expect(taken.stderr).toBe('');
      expect(taken.code).toBe(0);
      expect(first.child.exitCode).toBeNull();
      expect(taken.stdout).toMatch(/conversations\.db +\d+ bytes {2}1 conversation, 2 turns/);
      expect(taken.stdout).toMatch(/keys\.json +\d+ bytes {2}1 key/);
      expect(modeOf(out)).toBe('700');
      for (const file of ['manifest.json', 'conversations.db', 'keys.json', 'audit/audit.jsonl'])
        expect(modeOf(path.join(out, file))).toBe('600');
      backup = out;

      expect(await first.stop()).toBe(0);
      rmSync(dataDir, { recursive: true, force: true });
      expect(existsSync(dataDir)).toBe(false);

      const restored = await bastion(['restore', '--from', out, '--data-dir', dataDir]);
      expect(restored.stderr).toBe('');
      expect(restored.code).toBe(0);
      expect(restored.stdout).toContain('checksums match');
      expect(readdirSync(dataDir).sort()).toEqual(['audit', 'conversations.db', 'keys.json']);
      for (const file of ['conversations.db', 'keys.json', 'audit/audit.jsonl'])
        expect(modeOf(path.join(dataDir, file))).toBe('600');

      const auditLog = path.join(dataDir, 'audit', 'audit.jsonl');
      const verified = await bastion(['audit', 'verify', auditLog]);
      expect(verified.code).toBe(0);
      const recordsAtBackup = recordsVerified(verified.stdout);
      // The audit log came back with the conversation's records in it.
      const events = auditRecords(auditLog).filter((record) => record.target === id);
      expect(events.map((record) => record.action)).toEqual(
        expect.arrayContaining(['conversation.create', 'conversation.turn']),
      );
      expect(events.filter((record) => record.action === 'conversation.turn')).toHaveLength(2);

      const second = await start(dataDir);
      expect((await api(second, `${key.slice(0, -4)}AAAA`, 'GET', `/v1/conversations/${id}`)).status).toBe(
        401,
      );
      expect(await turnsOf(second, key, id)).toEqual(before);
      const third = await say(second, key, id, 'read todo.txt');
      expect(third.conversation_id).toBe(id);
      expect(third.answer).toContain('water the plants');
      const after = await turnsOf(second, key, id);
      expect(after.slice(0, 2)).toEqual(before);
      expect(after.map((turn) => [turn.seq, turn.prompt])).toEqual([
        [1, 'read notes.txt'],
        [2, 'list files'],
        [3, 'read todo.txt'],
      ]);
      expect(await second.stop()).toBe(0);

      // The new server continued the restored chain rather than starting another.
      const continued = await bastion(['audit', 'verify', auditLog]);
      expect(continued.code).toBe(0);
      expect(recordsVerified(continued.stdout)).toBeGreaterThan(recordsAtBackup);
    },
    TEST_TIMEOUT_MS,
  );

  it.each(['conversations.db', 'keys.json', 'audit/audit.jsonl'])(
    'refuses a backup whose %s has one byte changed, and changes nothing',
    async (file) => {
      const damaged = path.join(base, 'backups', `damaged-${file.replace('/', '-')}`);
      cpSync(backup as string, damaged, { recursive: true });
      const target = path.join(damaged, file);
      const bytes = readFileSync(target);
      const at = Math.floor(bytes.length / 2);
      bytes[at] = (bytes[at] as number) ^ 0x01;
      writeFileSync(target, bytes);

      // One populated directory for every damaged file: each refusal must leave it exactly as it was.
      damagedTarget ??= populated('data-damaged');
      const dataDir = await damagedTarget;
      const state = snapshot(dataDir);
      const empty = path.join(base, `data-empty-${file.replace('/', '-')}`);
      const [forced, refused] = await Promise.all([
        bastion(['restore', '--from', damaged, '--data-dir', dataDir, '--force']),
        bastion(['restore', '--from', damaged, '--data-dir', empty]),
      ]);
      expect(forced.code).toBe(1);
      expect(forced.stderr).toContain(`${file} in the backup does not match the SHA-256 in manifest.json`);
      expect(snapshot(dataDir)).toEqual(state);
      expect(refused.code).toBe(1);
      expect(existsSync(empty)).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses a backup without its manifest',
    async () => {
      const incomplete = path.join(base, 'backups', 'incomplete');
      cpSync(backup as string, incomplete, { recursive: true });
      rmSync(path.join(incomplete, 'manifest.json'));
      const refused = await bastion(['restore', '--from', incomplete, '--data-dir', path.join(base, 'x')]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/holds no manifest\.json/);
      expect(existsSync(path.join(base, 'x'))).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses to restore into a data directory that holds state without --force; with it, keeps what it replaced',
    async () => {
      const dataDir = await populated('data-populated');
      // State that differs from the backup: a second key.
      await createKey(dataDir);
      const state = snapshot(dataDir);
      const refused = await bastion(['restore', '--from', backup as string, '--data-dir', dataDir]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(
        /already holds Bastion state \(conversations\.db, keys\.json, audit\/audit\.jsonl\)/,
      );
      expect(refused.stderr).toContain('--force');
      expect(snapshot(dataDir)).toEqual(state);

      const keysBefore = readFileSync(path.join(dataDir, 'keys.json'));
      const forced = await bastion(['restore', '--from', backup as string, '--data-dir', dataDir, '--force']);
      expect(forced.code).toBe(0);
      expect(readFileSync(path.join(dataDir, 'keys.json'))).toEqual(
        readFileSync(path.join(backup as string, 'keys.json')),
      );
      const kept = readdirSync(dataDir).filter((name) => name.includes('.replaced-'));
      expect(kept.map((name) => name.replace(/\.replaced-.*$/, '')).sort()).toEqual([
        'conversations.db',
        'keys.json',
      ]);
      const keptKeys = kept.find((name) => name.startsWith('keys.json.')) as string;
      expect(readFileSync(path.join(dataDir, keptKeys))).toEqual(keysBefore);
      expect(
        readdirSync(path.join(dataDir, 'audit')).filter((name) => name.includes('.replaced-')),
      ).toHaveLength(1);
      expect((await bastion(['audit', 'verify', path.join(dataDir, 'audit', 'audit.jsonl')])).code).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'restores with --force over what a killed server left, keeping what it had committed aside',
    async () => {
      const dataDir = await populated('data-crashed');
      const key = await createKey(dataDir);
      const server = await start(dataDir);
      const id = await newConversation(server, key);
      await say(server, key, id, 'read notes.txt');
      server.child.kill('SIGKILL');
      await server.exited;
      expect(existsSync(path.join(dataDir, 'conversations.db-wal'))).toBe(true);

      const forced = await bastion(['restore', '--from', backup as string, '--data-dir', dataDir, '--force']);
      expect(forced.stderr).toBe('');
      expect(forced.code).toBe(0);
      const names = readdirSync(dataDir);
      expect(names.filter((name) => name.startsWith('conversations.db')).sort()).toEqual([
        'conversations.db',
        expect.stringMatching(/^conversations\.db\.replaced-\d{4}-\d\d-\d\dT\d{6}\.\d{3}Z$/),
      ]);
      const turnsIn = (file: string): number => {
        const db = new Database(file, { readonly: true });
        try {
          const row = db
            .prepare<[string], { n: number }>('SELECT count(*) AS n FROM turns WHERE conversation_id = ?')
            .get(id);
          return row?.n ?? 0;
        } finally {
          db.close();
        }
      };
      // The turn the killed server committed is kept aside, not lost, and not in the restored database.
      const aside = names.find((name) => name.startsWith('conversations.db.replaced-')) as string;
      expect(turnsIn(path.join(dataDir, aside))).toBe(1);
      expect(turnsIn(path.join(dataDir, 'conversations.db'))).toBe(0);

      const restarted = await start(dataDir);
      expect((await fetch(new URL('/health/ready', restarted.url))).status).toBe(200);
      expect(await restarted.stop()).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses to restore over the data directory of a running server, even with --force',
    async () => {
      const dataDir = await populated('data-busy');
      const server = await start(dataDir);
      const state = snapshot(dataDir);
      const refused = await bastion([
        'restore',
        '--from',
        backup as string,
        '--data-dir',
        dataDir,
        '--force',
      ]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/conversations\.db is open in another process.*stop it first/);
      expect(snapshot(dataDir)).toEqual(state);
      expect((await fetch(new URL('/health/ready', server.url))).status).toBe(200);
      expect(await server.stop()).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses a non-empty --out, and says that Redis conversations are not in the backup',
    async () => {
      const dataDir = await populated('data-redis');
      const out = path.join(base, 'backups', 'redis');
      const redisEnv = { BASTION_STORE: 'redis', BASTION_REDIS_URL: 'redis://127.0.0.1:9/0' };
      const [refused, taken] = await Promise.all([
        bastion(['backup', '--out', backup as string, '--data-dir', dataDir]),
        bastion(['backup', '--out', out, '--data-dir', dataDir], redisEnv),
      ]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/is not empty/);
      expect(taken.code).toBe(0);
      expect(taken.stdout).toMatch(/Conversations are in Redis .* not in this backup: back up Redis/);
      expect(readdirSync(out).sort()).toEqual(['audit', 'keys.json', 'manifest.json']);
      const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
      expect(manifest.conversations).toEqual({ store: 'redis', included: false });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'copies everything committed before the backup began, and whole turns only, while turns are being written',
    async () => {
      const dataDir = path.join(base, 'data-concurrent');
      const key = await createKey(dataDir);
      const server = await start(dataDir);
      const ids = [await newConversation(server, key), await newConversation(server, key)];
      // Committed before the backup: in the write-ahead log, not yet in conversations.db itself.
      for (const id of ids) await say(server, key, id, 'read notes.txt');
      const out = path.join(base, 'backups', 'concurrent');
      const busy = Promise.all(
        Array.from({ length: BUSY_TURNS }, (_, n) =>
          say(server, key, ids[n % ids.length] as string, `read file-${n + 1}.txt`),
        ),
      );
      const taken = await bastion(['backup', '--out', out, '--data-dir', dataDir]);
      await busy;
      expect(taken.code).toBe(0);
      expect(await server.stop()).toBe(0);

      const restoredDir = path.join(base, 'data-concurrent-restored');
      expect((await bastion(['restore', '--from', out, '--data-dir', restoredDir])).code).toBe(0);
      const db = new Database(path.join(restoredDir, 'conversations.db'), { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        const rows = db
          .prepare<[], { id: string; turn_count: number; turns: number; top: number }>(
            `SELECT c.id, c.turn_count, count(t.seq) AS turns, coalesce(max(t.seq), 0) AS top
             FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id GROUP BY c.id`,
          )
          .all();
        for (const id of ids) {
          const row = rows.find((r) => r.id === id);
          expect(row?.turns).toBeGreaterThanOrEqual(1);
          // Each turn and the count on its conversation are written in one transaction: never half of it.
          expect(row?.turn_count).toBe(row?.turns);
          expect(row?.top).toBe(row?.turns);
        }
      } finally {
        db.close();
      }
      const verified = await bastion(['audit', 'verify', path.join(restoredDir, 'audit', 'audit.jsonl')]);
      expect(verified.code).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );
});
