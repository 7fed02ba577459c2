/**
 * Hostile-workspace suite: every test is named after an attack and runs on real temp directories through the
 * registry door (the same path a client's tools/call takes). Invariants checked after every test:
 *  - the tree outside the workspace (everything under `base` except `ws/`) is byte-for-byte unchanged;
 *  - no result, refused or not, names the host path (`base`) except inside the quoted client path itself.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { localPrincipal } from '../../src/auth/principal.js';
import { DEFAULT_DENY_PATTERNS } from '../../src/config/config.schema.js';
import type { ToolResult } from '../../src/tools/tool.js';
import { fdLocator, inodeLocator, O, type FdLocator } from '../../src/workspace/fd-locator.js';
import { Sandbox } from '../../src/workspace/sandbox.js';
import { quote } from '../../src/workspace/sandbox.errors.js';
import { createWorkspaceFixture, textOf, type WorkspaceFixture } from '../support/workspace-fixture.js';

const TEST_TIMEOUT = 20_000;
/** Latency bound for a call that a bomb (glob, regex, huge file, loop) must not be able to stall. */
const BOMB_MS = 2_000;
const OUTSIDE_MARKER = 'OUTSIDE-MARKER-7f3a';

interface Outcome {
  name: string;
  args: Record<string, unknown>;
  result: ToolResult;
  text: string;
  isError: boolean;
  ms: number;
}

let ws: WorkspaceFixture;
let calls: Outcome[];
let armed: string | null;
let fifos: string[];

async function setup(options: Parameters<typeof createWorkspaceFixture>[0] = {}): Promise<WorkspaceFixture> {
  ws.cleanup();
  ws = await createWorkspaceFixture(options);
  return ws;
}

beforeEach(async () => {
  ws = await createWorkspaceFixture();
  calls = [];
  armed = null;
  fifos = [];
});

afterEach(() => {
  try {
    // Unblock anything that might be stuck opening a FIFO (O_RDWR never blocks on Linux).
    for (const fifo of fifos) {
      try {
        closeSync(openSync(fifo, fsConstants.O_RDWR | fsConstants.O_NONBLOCK));
      } catch {
        // already gone
      }
    }
    expect(armed).not.toBeNull(); // every test snapshots the outside tree after its setup
    expect(snapshotOutside()).toBe(armed);
    for (const call of calls) {
      expect({ call: call.name, leak: leakedHostPath(call) }).toEqual({ call: call.name, leak: null });
    }
  } finally {
    ws.cleanup();
  }
});

/** Calls a tool through the registry, timing it and recording the result for the after-test checks. */
async function call(
  name: string,
  args: Record<string, unknown>,
  overrides: Parameters<WorkspaceFixture['call']>[2] = {},
): Promise<Outcome> {
  const started = performance.now();
  const result = await ws.call(name, args, overrides);
  const outcome: Outcome = {
    name,
    args,
    result,
    text: textOf(result),
    isError: result.isError === true,
    ms: performance.now() - started,
  };
  calls.push(outcome);
  return outcome;
}

/** Calls a tool as a client that holds the write scope, whatever the fixture's principal. */
function callAsWriter(name: string, args: Record<string, unknown>): Promise<Outcome> {
  return call(name, args, { principal: localPrincipal(false) });
}

/** Rejects when `promise` has not settled within `ms` (so a blocking call fails the test instead of hanging it). */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The host path a result exposes, once the client's own (quoted) strings are taken out; null when none. */
function leakedHostPath(outcome: Outcome): string | null {
  let shown =
    outcome.text + (outcome.result.structuredContent ? JSON.stringify(outcome.result.structuredContent) : '');
  const strings: string[] = [];
  const collect = (value: unknown): void => {
    if (typeof value === 'string') strings.push(value);
    else if (Array.isArray(value)) value.forEach(collect);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(outcome.args);
  // Only strings that themselves name the host path are taken out: the client sent them, so echoing them back
  // (quoted in a refusal, or plain in a success message) discloses nothing new.
  for (const s of strings.filter((v) => v.includes(ws.base)).sort((a, b) => b.length - a.length)) {
    for (const form of [quote(s), JSON.stringify(quote(s)).slice(1, -1), s, JSON.stringify(s).slice(1, -1)]) {
      shown = shown.split(form).join('<client>');
    }
  }
  return shown.includes(ws.base)
    ? shown.slice(Math.max(0, shown.indexOf(ws.base) - 80), shown.indexOf(ws.base) + 120)
    : null;
}

/** sha256 over every entry under `base` except the workspace: relative path, type, content or link target. */
function snapshotOutside(): string {
  const hash = createHash('sha256');
  const visit = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (rel === '' && name === 'ws') continue;
      const full = path.join(dir, name);
      const relName = rel ? `${rel}/${name}` : name;
      const st = lstatSync(full);
      hash.update(`\0${relName}\0${st.mode.toString(8)}\0`);
      if (st.isSymbolicLink()) hash.update(`link:${readlinkSync(full)}`);
      else if (st.isDirectory()) {
        hash.update('dir');
        visit(full, relName);
      } else if (st.isFile()) hash.update(`file:${st.size}:`).update(readFileSync(full));
      else hash.update('special');
    }
  };
  visit(ws.base, '');
  return hash.digest('hex');
}

/** Takes the reference snapshot of everything outside the workspace, after the test's own setup. */
function arm(): void {
  armed = snapshotOutside();
}

function expectRefused(outcome: Outcome, why?: RegExp): void {
  expect({ call: outcome.name, args: outcome.args, isError: outcome.isError }).toEqual({
    call: outcome.name,
    args: outcome.args,
    isError: true,
  });
  if (why) expect(outcome.text).toMatch(why);
  expect(outcome.text).not.toContain(OUTSIDE_MARKER);
}

function expectFast(outcome: Outcome, ms = BOMB_MS): void {
  expect({ call: outcome.name, args: outcome.args, fast: outcome.ms < ms }).toEqual({
    call: outcome.name,
    args: outcome.args,
    fast: true,
  });
}

function inRoot(...parts: string[]): string {
  return path.join(ws.root, ...parts);
}

function outsideFile(name: string, content = `${OUTSIDE_MARKER} ${name}\n`): string {
  const file = path.join(ws.outside, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
}

describe('hostile workspace: symbolic links', () => {
  it(
    'symlink to a file outside: read, write, edit, info, media and multi-read refused; delete removes only the link',
    async () => {
      const secret = outsideFile('secret.txt');
      symlinkSync(secret, inRoot('leak.txt'));
      symlinkSync('../outside/secret.txt', inRoot('leak-relative.txt'));
      symlinkSync('..', inRoot('up'));
      arm();

      for (const p of ['leak.txt', 'leak-relative.txt', 'up/outside/secret.txt', './leak.txt']) {
        expectRefused(await call('read_text_file', { path: p }), /outside the workspace/);
        expectRefused(await call('read_text_file', { path: p, head: 1 }));
        expectRefused(await call('read_media_file', { path: p }));
        expectRefused(await call('get_file_info', { path: p }));
        expectRefused(await call('grep_files', { path: p, pattern: 'MARKER' }));
      }
      expectRefused(await call('list_directory', { path: 'up' }), /outside the workspace/);
      expectRefused(await call('write_file', { path: 'leak.txt', content: 'pwned' }), /symbolic link/);
      expectRefused(await call('write_file', { path: 'up/outside/secret.txt', content: 'pwned' }));
      expectRefused(await call('write_file', { path: 'up/outside/new.txt', content: 'pwned' }));
      expectRefused(
        await call('edit_file', { path: 'leak.txt', edits: [{ oldText: 'OUTSIDE', newText: 'pwned' }] }),
      );
      expectRefused(await call('move_file', { source: 'up/outside/secret.txt', destination: 'stolen.txt' }));

      const multi = await call('read_multiple_files', { paths: ['leak.txt', 'leak-relative.txt'] });
      expect(multi.text).not.toContain(OUTSIDE_MARKER);
      expect(multi.text).toMatch(/outside the workspace/);

      // Searching never follows the link into its target.
      const grep = await call('grep_files', { path: '.', pattern: 'MARKER' });
      expect(grep.isError).toBe(false);
      expect(grep.result.structuredContent?.matches).toEqual([]);

      // Deleting and moving a link act on the link, never on its target.
      expect((await call('move_file', { source: 'leak.txt', destination: 'moved-link.txt' })).isError).toBe(
        false,
      );
      expect(lstatSync(inRoot('moved-link.txt')).isSymbolicLink()).toBe(true);
      expect((await call('delete_file', { path: 'moved-link.txt' })).isError).toBe(false);
      expect(existsSync(inRoot('moved-link.txt'))).toBe(false);
      expect(readFileSync(secret, 'utf8')).toContain(OUTSIDE_MARKER);
      expect(existsSync(path.join(ws.base, 'stolen.txt'))).toBe(false);
      expect(existsSync(inRoot('stolen.txt'))).toBe(false);
    },
    TEST_TIMEOUT,
  );

  it(
    'symlink chain a -> b -> outside: refused at every hop, while an all-inside chain is followed',
    async () => {
      const secret = outsideFile('chain-secret.txt');
      symlinkSync(secret, inRoot('b'));
      symlinkSync('b', inRoot('a'));
      mkdirSync(inRoot('sub'));
      symlinkSync('../a', inRoot('sub/c'));
      writeFileSync(inRoot('real.txt'), 'inside\n');
      symlinkSync('real.txt', inRoot('y'));
      symlinkSync('y', inRoot('x'));
      arm();

      for (const p of ['a', 'b', 'sub/c']) {
        expectRefused(await call('read_text_file', { path: p }), /outside the workspace/);
        expectRefused(await call('write_file', { path: p, content: 'pwned' }));
        expectRefused(await call('edit_file', { path: p, edits: [{ oldText: 'O', newText: 'X' }] }));
      }
      const ok = await call('read_text_file', { path: 'x' });
      expect(ok.isError).toBe(false);
      expect(ok.text).toBe('inside\n');
    },
    TEST_TIMEOUT,
  );

  it(
    'symlinked parent directory: read, write, list, tree, create, move and delete under a dir link to outside refused',
    async () => {
      outsideFile('dir/secret.txt');
      symlinkSync(path.join(ws.outside, 'dir'), inRoot('linkdir'));
      writeFileSync(inRoot('inside.txt'), 'inside\n');
      arm();

      expectRefused(await call('read_text_file', { path: 'linkdir/secret.txt' }), /outside the workspace/);
      expectRefused(await call('list_directory', { path: 'linkdir' }));
      expectRefused(await call('list_directory_with_sizes', { path: 'linkdir' }));
      expectRefused(await call('directory_tree', { path: 'linkdir' }));
      expectRefused(await call('search_files', { path: 'linkdir', pattern: '**' }));
      expectRefused(await call('grep_files', { path: 'linkdir', pattern: 'MARKER' }));
      expectRefused(await call('write_file', { path: 'linkdir/secret.txt', content: 'pwned' }));
      expectRefused(await call('write_file', { path: 'linkdir/new.txt', content: 'pwned' }));
      expectRefused(await call('create_directory', { path: 'linkdir/newdir' }));
      expectRefused(await call('create_directory', { path: 'linkdir' }));
      expectRefused(await call('delete_file', { path: 'linkdir/secret.txt' }));
      expectRefused(await call('move_file', { source: 'inside.txt', destination: 'linkdir/moved.txt' }));
      expectRefused(await call('move_file', { source: 'linkdir/secret.txt', destination: 'stolen.txt' }));

      // The tree of the root shows the link but never descends into it.
      const tree = await call('directory_tree', { path: '.' });
      expect(tree.isError).toBe(false);
      expect(tree.text).not.toContain('secret.txt');
      const found = await call('search_files', { path: '.', pattern: '**/secret.txt' });
      expect(found.result.structuredContent?.matches).toEqual([]);

      expect(existsSync(path.join(ws.outside, 'dir/new.txt'))).toBe(false);
      expect(existsSync(path.join(ws.outside, 'dir/newdir'))).toBe(false);
      expect(existsSync(inRoot('inside.txt'))).toBe(true);
    },
    TEST_TIMEOUT,
  );

  it(
    'dangling symlink to outside used to create a file or directory: refused, nothing created outside',
    async () => {
      symlinkSync(path.join(ws.outside, 'created.txt'), inRoot('dangling'));
      symlinkSync('../outside/created-rel.txt', inRoot('dangling-rel'));
      symlinkSync(path.join(ws.outside, 'newdir'), inRoot('dangling-dir'));
      writeFileSync(inRoot('src.txt'), 'inside\n');
      arm();

      for (const p of ['dangling', 'dangling-rel']) {
        expectRefused(await call('write_file', { path: p, content: 'pwned' }), /symbolic link/);
        expectRefused(await call('edit_file', { path: p, edits: [{ oldText: 'a', newText: 'b' }] }));
        expectRefused(await call('create_directory', { path: p }));
        expectRefused(await call('move_file', { source: 'src.txt', destination: p }));
        expectRefused(await call('read_text_file', { path: p }));
      }
      expectRefused(await call('write_file', { path: 'dangling-dir/x.txt', content: 'pwned' }));
      expectRefused(await call('create_directory', { path: 'dangling-dir/sub' }));

      for (const name of ['created.txt', 'created-rel.txt', 'newdir']) {
        expect(existsSync(path.join(ws.outside, name))).toBe(false);
      }
      expect(lstatSync(inRoot('dangling')).isSymbolicLink()).toBe(true);
      expect(readFileSync(inRoot('src.txt'), 'utf8')).toBe('inside\n');
    },
    TEST_TIMEOUT,
  );

  it(
    'symlink loop (a -> b -> a, self -> self) is answered quickly by every tool',
    async () => {
      symlinkSync('b', inRoot('a'));
      symlinkSync('a', inRoot('b'));
      symlinkSync('self', inRoot('self'));
      symlinkSync('.', inRoot('dot'));
      writeFileSync(inRoot('file.txt'), 'inside\n');
      arm();

      for (const p of ['a', 'b', 'self', 'a/x']) {
        const read = await call('read_text_file', { path: p });
        expectRefused(read);
        expectFast(read);
        expectFast(await call('list_directory', { path: p }));
        expectRefused(await call('write_file', { path: p, content: 'x' }));
        expectRefused(await call('create_directory', { path: `${p}/sub` }));
      }
      // A link to the root itself stays inside: reachable, but walks never loop through it.
      const viaDot = await call('read_text_file', { path: 'dot/dot/dot/file.txt' });
      expect(viaDot.text).toBe('inside\n');
      const tree = await call('directory_tree', { path: '.' });
      expectFast(tree);
      expect(tree.isError).toBe(false);
      const search = await call('search_files', { path: '.', pattern: '**/file.txt' });
      expectFast(search);
      expect(search.result.structuredContent?.matches).toEqual(['file.txt']);
    },
    TEST_TIMEOUT,
  );

  it(
    'hard link to an outside file: every read refused on the opened file, grep walks skip it, edit_file refused as a read',
    async () => {
      const target = outsideFile('hard.txt', `${OUTSIDE_MARKER} hard\n`);
      linkSync(target, inRoot('hard.txt'));
      mkdirSync(inRoot('sub'));
      linkSync(target, inRoot('sub/again.txt'));
      // The name's lstat shows a symlink with one link; only the opened file shows the three.
      symlinkSync('hard.txt', inRoot('alias.txt'));
      writeFileSync(inRoot('plain.txt'), 'plain hard\n');
      arm();

      const refusedAsHardLink = /other hard links[\s\S]*workspace\.allowHardLinks/;
      const reads: Array<Record<string, unknown>> = [
        { path: 'hard.txt' },
        { path: 'hard.txt', head: 1 },
        { path: 'hard.txt', tail: 1 },
        { path: 'sub/again.txt' },
        { path: 'alias.txt' },
        { path: `${ws.root}/hard.txt` },
      ];
      for (const args of reads) expectRefused(await call('read_text_file', args), refusedAsHardLink);
      expectRefused(await call('read_media_file', { path: 'hard.txt' }), refusedAsHardLink);
      expectRefused(await call('grep_files', { path: 'hard.txt', pattern: 'hard' }), refusedAsHardLink);
      const multi = await call('read_multiple_files', { paths: ['hard.txt', 'plain.txt'] });
      expect(multi.result.structuredContent?.files).toEqual([
        { path: 'hard.txt', error: expect.stringMatching(refusedAsHardLink) },
        { path: 'plain.txt', content: 'plain hard\n' },
      ]);
      // A walk skips it as it skips the other files it may not read: no match, no error.
      const grep = await call('grep_files', { path: '.', pattern: 'hard' });
      expect(grep.isError).toBe(false);
      expect(grep.result.structuredContent?.matches).toEqual([
        { path: 'plain.txt', line: 1, text: 'plain hard' },
      ]);
      for (const dryRun of [false, true]) {
        const edit = await call('edit_file', {
          path: 'hard.txt',
          edits: [{ oldText: 'hard', newText: 'x' }],
          dryRun,
        });
        expectRefused(edit, refusedAsHardLink);
      }
      await expect(ws.sandbox.openFile('hard.txt')).rejects.toMatchObject({ code: 'hard_link' });
      expect(readFileSync(inRoot('hard.txt'), 'utf8')).toBe(`${OUTSIDE_MARKER} hard\n`);
      expect(statSync(target).nlink).toBe(3);
    },
    TEST_TIMEOUT,
  );

  it(
    'hard link to an outside file: write_file replaces the inside name only, the outside link keeps its content',
    async () => {
      const target = outsideFile('hard.txt', `${OUTSIDE_MARKER} hard\n`);
      linkSync(target, inRoot('hard.txt'));
      arm();

      const write = await call('write_file', { path: 'hard.txt', content: 'inside now\n' });
      expect(write.isError).toBe(false);
      expect(readFileSync(inRoot('hard.txt'), 'utf8')).toBe('inside now\n');
      expect(readFileSync(target, 'utf8')).toBe(`${OUTSIDE_MARKER} hard\n`);
      expect(statSync(target).nlink).toBe(1);
      expect(statSync(inRoot('hard.txt')).ino).not.toBe(statSync(target).ino);
      // The name now holds a file of its own: it reads and edits like any other.
      expect((await call('read_text_file', { path: 'hard.txt' })).text).toBe('inside now\n');
      const edit = await call('edit_file', {
        path: 'hard.txt',
        edits: [{ oldText: 'now', newText: 'again' }],
      });
      expect(edit.isError).toBe(false);
      expect(readFileSync(inRoot('hard.txt'), 'utf8')).toBe('inside again\n');
      expect(readFileSync(target, 'utf8')).toBe(`${OUTSIDE_MARKER} hard\n`);
    },
    TEST_TIMEOUT,
  );

  it(
    'hard links admitted by workspace.allowHardLinks (a pnpm store): read, searched and edited, the store never changes',
    async () => {
      const store = outsideFile('store/pkg/index.js', 'module.exports = 1;\n');
      mkdirSync(inRoot('node_modules/pkg'), { recursive: true });
      linkSync(store, inRoot('node_modules/pkg/index.js'));
      arm();
      const sandbox = await Sandbox.create({
        root: ws.root,
        denyPatterns: DEFAULT_DENY_PATTERNS,
        limits: ws.sandbox.limits,
        readOnly: false,
        allowHardLinks: true,
      });

      for (const admitting of [sandbox, sandbox.narrow(['node_modules'])]) {
        const read = await call(
          'read_text_file',
          { path: 'node_modules/pkg/index.js' },
          { sandbox: admitting },
        );
        expect(read.text).toBe('module.exports = 1;\n');
      }
      const grep = await call('grep_files', { path: '.', pattern: 'exports' }, { sandbox });
      expect(grep.result.structuredContent?.matches).toEqual([
        { path: 'node_modules/pkg/index.js', line: 1, text: 'module.exports = 1;' },
      ]);
      const edit = await call(
        'edit_file',
        { path: 'node_modules/pkg/index.js', edits: [{ oldText: '1', newText: '2' }] },
        { sandbox },
      );
      expect(edit.isError).toBe(false);
      expect(readFileSync(inRoot('node_modules/pkg/index.js'), 'utf8')).toBe('module.exports = 2;\n');
      expect(readFileSync(store, 'utf8')).toBe('module.exports = 1;\n');
    },
    TEST_TIMEOUT,
  );

  it(
    'symlink to /dev/zero (and other host devices): refused quickly, never read',
    async () => {
      symlinkSync('/dev/zero', inRoot('zero'));
      symlinkSync('/dev/urandom', inRoot('random'));
      symlinkSync('/proc/self/environ', inRoot('environ'));
      arm();

      for (const p of ['zero', 'random', 'environ']) {
        for (const args of [{ path: p }, { path: p, head: 1 }, { path: p, tail: 1 }]) {
          const read = await call('read_text_file', args);
          expectRefused(read, /outside the workspace/);
          expectFast(read);
        }
        expectRefused(await call('read_media_file', { path: p }));
        expectRefused(await call('grep_files', { path: p, pattern: 'x' }));
        expectRefused(await call('write_file', { path: p, content: 'x' }));
      }
    },
    TEST_TIMEOUT,
  );
});

/**
 * The real locator, except that the first check of a descriptor under `swap/` first swaps that directory for
 * a link to outside: the instant between the sandbox's resolution and open and its check of what was opened,
 * which a racing attacker can only hope to hit. `swaps` tells that the check ran and the swap was made.
 */
function swapAtCheck(real: FdLocator): FdLocator & { swaps: number } {
  const swap = inRoot('swap');
  const locator = {
    anchored: real.anchored,
    swaps: 0,
    locate(fd: number, expected: string): string | null {
      if (locator.swaps === 0 && (expected === swap || expected.startsWith(`${swap}/`))) {
        locator.swaps += 1;
        renameSync(inRoot('swap'), inRoot('parked-dir'));
        renameSync(inRoot('parked-link'), inRoot('swap'));
      }
      return real.locate(fd, expected);
    },
    child: (dirFd: number, dirReal: string, name: string): string => real.child(dirFd, dirReal, name),
  };
  return locator;
}

describe.each([
  ['/proc/self/fd', fdLocator],
  ['device and inode', inodeLocator],
])('hostile workspace: parent swapped for a link out at the check (%s)', (_kind, real) => {
  it.each<[string, Record<string, unknown>]>([
    ['read_text_file', { path: 'swap/file.txt' }],
    ['get_file_info', { path: 'swap/file.txt' }],
    ['grep_files', { path: 'swap', pattern: 'inside' }],
    ['list_directory', { path: 'swap' }],
    ['write_file', { path: 'swap/file.txt', content: 'inside write\n' }],
    ['edit_file', { path: 'swap/file.txt', edits: [{ oldText: 'inside', newText: 'edited' }] }],
    ['delete_file', { path: 'swap/file.txt' }],
    ['move_file', { source: 'swap/file.txt', destination: 'moved.txt' }],
  ])(
    '%s: refused as a race, nothing outside read or changed; the same call succeeds once swapped back',
    async (name, args) => {
      const target = path.join(ws.outside, 'target');
      outsideFile('target/file.txt');
      mkdirSync(inRoot('swap'));
      writeFileSync(inRoot('swap/file.txt'), 'inside\n');
      symlinkSync(target, inRoot('parked-link'));
      arm();
      const locator = swapAtCheck(real);
      const { limits } = ws.sandbox;
      const sandbox = await Sandbox.create(
        { root: ws.root, denyPatterns: DEFAULT_DENY_PATTERNS, limits, readOnly: false },
        locator,
      );

      const raced = await call(name, args, { sandbox, principal: localPrincipal(false) });

      expect(locator.swaps).toBe(1);
      expectRefused(raced, /the path changed while it was being opened/);
      expect(readFileSync(path.join(target, 'file.txt'), 'utf8')).toContain(OUTSIDE_MARKER);
      // The directory that was resolved, now parked, was not touched either.
      expect(readdirSync(inRoot('parked-dir'))).toEqual(['file.txt']);
      expect(readFileSync(inRoot('parked-dir/file.txt'), 'utf8')).toBe('inside\n');

      // Swapped back, with no swap at the check: the refusal was the swap's doing.
      renameSync(inRoot('swap'), inRoot('parked-link'));
      renameSync(inRoot('parked-dir'), inRoot('swap'));
      const calm = await call(name, args, { sandbox, principal: localPrincipal(false) });
      expect({ name, isError: calm.isError, text: calm.text }).toEqual({
        name,
        isError: false,
        text: expect.any(String),
      });
      expect(locator.swaps).toBe(1);
    },
    TEST_TIMEOUT,
  );
});

describe('hostile workspace: the race check off Linux (device and inode)', () => {
  it(
    'directory swapped for a symlink to outside between resolution and open: refused (a stat of the name agreed)',
    async () => {
      mkdirSync(inRoot('dir'));
      writeFileSync(inRoot('dir/file.txt'), 'inside\n');
      const outsideTwin = outsideFile('dir/file.txt');
      arm();
      // Resolved while the path was inside the workspace, as the sandbox resolves it...
      const expected = realpathSync.native(inRoot('dir/file.txt'));
      // ...then a directory on the way becomes a link out, and the open follows it.
      renameSync(inRoot('dir'), inRoot('parked'));
      symlinkSync(path.dirname(outsideTwin), inRoot('dir'));
      const fd = openSync(expected, O.readFile);
      try {
        const opened = fstatSync(fd);
        expect(opened.ino).toBe(statSync(outsideTwin).ino);
        // The former check (stat of the expected name) follows the same link, so it agreed with the descriptor.
        const named = statSync(expected);
        expect([named.dev, named.ino]).toEqual([opened.dev, opened.ino]);
        expect(inodeLocator.locate(fd, expected)).toBeNull();
        if (fdLocator.anchored) expect(fdLocator.locate(fd, expected)).not.toBe(expected);
      } finally {
        closeSync(fd);
      }
      // Swapped back, the same check accepts the file that was resolved.
      unlinkSync(inRoot('dir'));
      renameSync(inRoot('parked'), inRoot('dir'));
      const again = openSync(expected, O.readFile);
      try {
        expect(inodeLocator.locate(again, expected)).toBe(expected);
      } finally {
        closeSync(again);
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'directory swapped for a symlink to outside after a walk opened it: its files are refused, not read outside',
    async () => {
      mkdirSync(inRoot('dir'));
      writeFileSync(inRoot('dir/file.txt'), 'inside\n');
      const outsideTwin = outsideFile('dir/file.txt');
      arm();
      const { limits } = ws.sandbox;
      const sandbox = await Sandbox.create(
        { root: ws.root, denyPatterns: DEFAULT_DENY_PATTERNS, limits, readOnly: false },
        inodeLocator,
      );
      const dir = await sandbox.openDir('dir');
      try {
        renameSync(inRoot('dir'), inRoot('parked'));
        symlinkSync(path.dirname(outsideTwin), inRoot('dir'));
        // Without /proc the name is opened by path, through the swapped directory, and then checked.
        expect(() => sandbox.openFileIn(dir, 'file.txt', 'dir/file.txt')).toThrow(/the path changed/);
      } finally {
        await dir.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'a sandbox on the device-and-inode check serves files and directories and still refuses a link out',
    async () => {
      mkdirSync(inRoot('dir'));
      writeFileSync(inRoot('dir/file.txt'), 'inside\n');
      symlinkSync(outsideFile('secret.txt'), inRoot('leak.txt'));
      arm();
      const { limits } = ws.sandbox;
      const sandbox = await Sandbox.create(
        { root: ws.root, denyPatterns: DEFAULT_DENY_PATTERNS, limits, readOnly: false },
        inodeLocator,
      );

      expect((await call('read_text_file', { path: 'dir/file.txt' }, { sandbox })).text).toBe('inside\n');
      expect((await call('list_directory', { path: 'dir' }, { sandbox })).text).toBe('[FILE] file.txt');
      const grep = await call('grep_files', { path: '.', pattern: 'inside' }, { sandbox });
      expect(grep.result.structuredContent?.matches).toEqual([
        { path: 'dir/file.txt', line: 1, text: 'inside' },
      ]);
      const write = await call('write_file', { path: 'dir/new.txt', content: 'new\n' }, { sandbox });
      expect(write.isError).toBe(false);
      expect((await call('create_directory', { path: 'dir/a/b' }, { sandbox })).isError).toBe(false);
      expectRefused(await call('read_text_file', { path: 'leak.txt' }, { sandbox }), /outside the workspace/);
    },
    TEST_TIMEOUT,
  );
});

describe('hostile workspace: client path tricks', () => {
  it(
    'create_directory under narrowed roots: made below a root, refused outside the roots',
    async () => {
      mkdirSync(inRoot('inside'));
      mkdirSync(inRoot('other'));
      arm();
      const sandbox = ws.sandbox.narrow(['inside']);

      expect((await call('create_directory', { path: 'inside/new/deep' }, { sandbox })).isError).toBe(false);
      expect(statSync(inRoot('inside/new/deep')).isDirectory()).toBe(true);
      expect((await call('create_directory', { path: 'inside' }, { sandbox })).isError).toBe(false);
      const absolute = await call('create_directory', { path: `${ws.root}/inside/abs` }, { sandbox });
      expect(absolute.isError).toBe(false);
      expect(statSync(inRoot('inside/abs')).isDirectory()).toBe(true);
      for (const p of ['other/x', 'top', '.', 'inside/../other/y', 'insider/z', `${ws.root}/other/z`]) {
        expectRefused(await call('create_directory', { path: p }, { sandbox }), /outside the workspace/);
      }
      expect(readdirSync(inRoot('other'))).toEqual([]);
      expect(readdirSync(ws.root).sort()).toEqual(['inside', 'other']);
    },
    TEST_TIMEOUT,
  );

  it(
    'prefix look-alike sibling (base/ws-evil next to base/ws): absolute paths and links into it refused',
    async () => {
      const evil = `${ws.root}-evil`;
      mkdirSync(evil);
      writeFileSync(path.join(evil, 'secret.txt'), `${OUTSIDE_MARKER} evil\n`);
      symlinkSync(evil, inRoot('evil-link'));
      arm();

      for (const p of [
        path.join(evil, 'secret.txt'),
        `${ws.root}/../ws-evil/secret.txt`,
        '../ws-evil/secret.txt',
        'evil-link/secret.txt',
      ]) {
        expectRefused(await call('read_text_file', { path: p }), /outside the workspace/);
        expectRefused(await call('write_file', { path: p, content: 'pwned' }));
      }
      for (const p of [evil, `${evil}/`, 'evil-link']) {
        expectRefused(await call('list_directory', { path: p }), /outside the workspace/);
        expectRefused(await call('create_directory', { path: `${p}/sub` }));
      }
      expectRefused(await call('write_file', { path: path.join(evil, 'new.txt'), content: 'pwned' }));
      expect(existsSync(path.join(evil, 'new.txt'))).toBe(false);
      expect(existsSync(path.join(evil, 'sub'))).toBe(false);
    },
    TEST_TIMEOUT,
  );

  it(
    'FIFO in the workspace: read refused promptly instead of blocking; write, edit, grep never open it',
    async () => {
      const fifo = inRoot('pipe');
      execFileSync('mkfifo', [fifo]);
      fifos.push(fifo);
      symlinkSync('pipe', inRoot('pipe-link'));
      writeFileSync(inRoot('ok.txt'), 'fine\n');
      arm();

      for (const p of ['pipe', 'pipe-link']) {
        for (const args of [{ path: p }, { path: p, head: 1 }, { path: p, tail: 1 }]) {
          const read = await within(
            5_000,
            call('read_text_file', args),
            `read_text_file ${JSON.stringify(args)}`,
          );
          expectRefused(read, /FIFO/);
          expectFast(read);
        }
        expectRefused(await within(5_000, call('read_media_file', { path: p }), 'read_media_file'), /FIFO/);
      }
      expectRefused(
        await within(5_000, call('write_file', { path: 'pipe', content: 'x' }), 'write_file'),
        /FIFO/,
      );
      expectRefused(
        await within(
          5_000,
          call('edit_file', { path: 'pipe', edits: [{ oldText: 'a', newText: 'b' }] }),
          'edit',
        ),
      );
      const multi = await within(5_000, call('read_multiple_files', { paths: ['pipe', 'ok.txt'] }), 'multi');
      expect(multi.text).toContain('fine');
      expect(multi.text).toMatch(/FIFO/);
      const grep = await within(5_000, call('grep_files', { path: '.', pattern: 'fine' }), 'grep_files');
      expectFast(grep);
      expect(grep.result.structuredContent?.matches).toEqual([{ path: 'ok.txt', line: 1, text: 'fine' }]);
      expectFast(await within(5_000, call('grep_files', { path: 'pipe', pattern: 'x' }), 'grep on fifo'));
      expect(lstatSync(fifo).isFIFO()).toBe(true);
    },
    TEST_TIMEOUT,
  );

  it(
    'NUL byte and control characters in paths refused, nothing created',
    async () => {
      writeFileSync(inRoot('README.md'), 'readme\n');
      arm();
      for (const p of ['README.md\0.png', 'a\0b', '\0', 'x\n', 'line\rbreak', 'esc\u001b[2J']) {
        expectRefused(await call('read_text_file', { path: p }), /control characters/);
        expectRefused(await call('write_file', { path: p, content: 'x' }), /control characters/);
        expectRefused(await call('create_directory', { path: p }));
      }
      expect(readdirSync(ws.root)).toEqual(['README.md']);
    },
    TEST_TIMEOUT,
  );

  it(
    "home paths ('~', '~/x') refused; '~user' stays a plain workspace name",
    async () => {
      arm();
      for (const p of ['~', '~/x', '~/.ssh/id_rsa', '~/.bashrc']) {
        expectRefused(await call('read_text_file', { path: p }), /home-directory/);
        expectRefused(await call('write_file', { path: p, content: 'x' }), /home-directory/);
        expectRefused(await call('list_directory', { path: p }), /home-directory/);
      }
      const plain = await call('read_text_file', { path: '~root/.bashrc' });
      expectRefused(plain, /does not exist/);
      expect(readdirSync(ws.root)).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    "URLs ('file:///etc/passwd') refused",
    async () => {
      const secret = outsideFile('url-secret.txt');
      arm();
      for (const p of [
        'file:///etc/passwd',
        `file://${secret}`,
        'FILE:///etc/passwd',
        'http://example.com/x',
      ]) {
        expectRefused(await call('read_text_file', { path: p }), /not a URL/);
        expectRefused(await call('write_file', { path: p, content: 'x' }), /not a URL/);
      }
      expect(readdirSync(ws.root)).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    "Windows paths: backslashes and drive letters ('..\\\\..\\\\x', 'C:\\\\x') refused",
    async () => {
      outsideFile('win.txt');
      arm();
      for (const p of [
        '..\\..\\x',
        '..\\outside\\win.txt',
        'C:\\x',
        'C:/x',
        'c:',
        'sub\\file',
        '\\\\server\\share\\x',
      ]) {
        expectRefused(await call('read_text_file', { path: p }), /Windows paths/);
        expectRefused(await call('write_file', { path: p, content: 'x' }), /Windows paths/);
        expectRefused(await call('create_directory', { path: p }));
      }
      expect(readdirSync(ws.root)).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    "Unicode look-alike dots ('\\u2024\\u2024/x', '\\uff0e\\uff0e/x') are plain names inside the workspace",
    async () => {
      outsideFile('x');
      writeFileSync(path.join(ws.base, 'x'), `${OUTSIDE_MARKER} base\n`);
      mkdirSync(inRoot('\u2024\u2024'));
      writeFileSync(inRoot('\u2024\u2024', 'x'), 'one-dot-leader\n');
      arm();

      const leader = await call('read_text_file', { path: '\u2024\u2024/x' });
      expect(leader.isError).toBe(false);
      expect(leader.text).toBe('one-dot-leader\n');
      for (const p of [
        '\uff0e\uff0e/x',
        '\uff0e\uff0e/outside/x',
        '\u2024\u2024/\u2024\u2024/x',
        '\u2025/x',
        '\ufe52\ufe52/x',
      ]) {
        expectRefused(await call('read_text_file', { path: p }), /does not exist/);
      }
      expectRefused(
        await call('write_file', { path: '\uff0e\uff0e/x', content: 'written' }),
        /parent directory/,
      );
      expect((await call('create_directory', { path: '\uff0e\uff0e' })).isError).toBe(false);
      expect((await call('write_file', { path: '\uff0e\uff0e/x', content: 'written\n' })).isError).toBe(
        false,
      );
      expect(readFileSync(inRoot('\uff0e\uff0e', 'x'), 'utf8')).toBe('written\n');
      const listing = await call('list_directory', { path: '\uff0e\uff0e' });
      expect(listing.text).toBe('[FILE] x');
      expect(readFileSync(path.join(ws.base, 'x'), 'utf8')).toContain(OUTSIDE_MARKER);
    },
    TEST_TIMEOUT,
  );

  it(
    'absolute paths outside (/etc/passwd, /, the outside dir) refused for every kind of tool',
    async () => {
      const secret = outsideFile('abs-secret.txt');
      const hostProbe = path.join('/tmp', `bastion-hostile-probe-${process.pid}-${Date.now()}`);
      arm();
      for (const p of [
        '/etc/passwd',
        '//etc/passwd',
        '/proc/self/root/etc/passwd',
        '/',
        secret,
        ws.outside,
        ws.base,
      ]) {
        expectRefused(await call('read_text_file', { path: p }), /outside the workspace/);
        expectRefused(await call('get_file_info', { path: p }), /outside the workspace/);
        expectRefused(await call('list_directory', { path: p }), /outside the workspace/);
        expectRefused(await call('search_files', { path: p, pattern: '**' }), /outside the workspace/);
        expectRefused(await call('grep_files', { path: p, pattern: 'root' }), /outside the workspace/);
        expectRefused(await call('directory_tree', { path: p }), /outside the workspace/);
      }
      expectRefused(await call('write_file', { path: hostProbe, content: 'x' }), /outside the workspace/);
      expectRefused(await call('create_directory', { path: hostProbe }), /outside the workspace/);
      expectRefused(await call('write_file', { path: path.join(ws.outside, 'new.txt'), content: 'x' }));
      expectRefused(await call('delete_file', { path: secret }));
      const multi = await call('read_multiple_files', { paths: ['/etc/passwd', secret] });
      expect(multi.text).not.toContain('root:');
      expect(multi.text).not.toContain(OUTSIDE_MARKER);
      expect(existsSync(hostProbe)).toBe(false);
      expect(existsSync(path.join(ws.outside, 'new.txt'))).toBe(false);
    },
    TEST_TIMEOUT,
  );

  it(
    "'..' chains refused for reads, writes, listings, moves and directory creation",
    async () => {
      outsideFile('dots.txt');
      mkdirSync(inRoot('a/b'), { recursive: true });
      writeFileSync(inRoot('in.txt'), 'inside\n');
      arm();
      const escapes = [
        '..',
        '../',
        '../outside/dots.txt',
        'a/../../outside/dots.txt',
        'a/b/../../../outside/dots.txt',
        './../outside/dots.txt',
        '../'.repeat(40) + 'etc/passwd',
        'a/b/c/../../../..',
        `${ws.root}/../outside/dots.txt`,
        `${ws.root}/a/../../outside/dots.txt`,
      ];
      for (const p of escapes) {
        expectRefused(await call('read_text_file', { path: p }), /outside the workspace/);
        expectRefused(await call('list_directory', { path: p }), /outside the workspace/);
        expectRefused(await call('write_file', { path: p, content: 'pwned' }));
        expectRefused(await call('create_directory', { path: `${p}/newdir` }));
        expectRefused(await call('move_file', { source: 'in.txt', destination: p }));
        expectRefused(await call('move_file', { source: p, destination: 'stolen.txt' }));
      }
      // '..' that stays inside is fine and lexical.
      expect((await call('read_text_file', { path: 'a/b/../../in.txt' })).text).toBe('inside\n');
      expect(readFileSync(inRoot('in.txt'), 'utf8')).toBe('inside\n');
      expect(existsSync(inRoot('stolen.txt'))).toBe(false);
      expect(existsSync(path.join(ws.base, 'newdir'))).toBe(false);
    },
    TEST_TIMEOUT,
  );
});

describe('hostile workspace: resource bombs', () => {
  it(
    '1 GiB sparse file: whole read refused quickly as too large; head, tail, grep and edit bounded and quick',
    async () => {
      const big = inRoot('sparse.bin');
      writeFileSync(big, '');
      truncateSync(big, 1024 ** 3);
      arm();

      const whole = await call('read_text_file', { path: 'sparse.bin' });
      expectRefused(whole, /over the .*-byte limit/);
      expectFast(whole, 500);
      for (const args of [
        { path: 'sparse.bin', head: 5 },
        { path: 'sparse.bin', tail: 5 },
      ]) {
        const part = await call('read_text_file', args);
        expectFast(part);
        // Either a bounded slice or a refusal by the response cap: never the gigabyte.
        if (part.isError) expect(part.text).toMatch(/limit/);
        else expect(Buffer.byteLength(part.text)).toBeLessThanOrEqual(2 * 1024 * 1024);
      }
      const media = await call('read_media_file', { path: 'sparse.bin' });
      expectRefused(media, /limit/);
      expectFast(media, 500);
      const edit = await call('edit_file', { path: 'sparse.bin', edits: [{ oldText: 'a', newText: 'b' }] });
      expectRefused(edit, /limit/);
      expectFast(edit, 500);
      const grep = await call('grep_files', { path: '.', pattern: 'x' });
      expectFast(grep);
      expect(grep.result.structuredContent?.filesSearched).toBe(0);
      expect(statSync(big).size).toBe(1024 ** 3);
    },
    TEST_TIMEOUT,
  );

  it(
    '20 MB file without newlines: head 1 and tail 1 return a bounded result fast',
    async () => {
      writeFileSync(inRoot('line.txt'), Buffer.alloc(20 * 1024 * 1024, 'a'));
      arm();
      for (const args of [
        { path: 'line.txt', head: 1 },
        { path: 'line.txt', tail: 1 },
      ]) {
        const part = await call('read_text_file', args);
        expectFast(part);
        expect(part.isError).toBe(false);
        expect(part.text.length).toBeGreaterThan(0);
        expect(Buffer.byteLength(part.text)).toBeLessThanOrEqual(2 * 1024 * 1024);
        expect(/^a+$/.test(part.text)).toBe(true);
      }
      expectRefused(await call('read_text_file', { path: 'line.txt' }), /limit/);
      const grep = await call('grep_files', { path: 'line.txt', pattern: 'a' });
      expectFast(grep);
      expect(grep.result.structuredContent?.matches).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    '10,000-entry directory: listings stop at maxListEntries and say so; walks stop at maxWalkEntries',
    async () => {
      await setup({ limits: { maxListEntries: 1000, maxWalkEntries: 2000 } });
      mkdirSync(inRoot('many'));
      for (let i = 0; i < 10_000; i++)
        closeSync(openSync(inRoot('many', `f${String(i).padStart(5, '0')}.txt`), 'w'));
      arm();

      const list = await call('list_directory', { path: 'many' });
      expectFast(list);
      expect(list.isError).toBe(false);
      expect(list.result.structuredContent?.truncated).toBe(true);
      expect((list.result.structuredContent?.entries as unknown[]).length).toBe(1000);
      expect(list.text).toContain('listing stopped at 1000 entries');
      const sized = await call('list_directory_with_sizes', { path: 'many' });
      expectFast(sized);
      expect(sized.result.structuredContent?.truncated).toBe(true);
      expect((sized.result.structuredContent?.entries as unknown[]).length).toBe(1000);
      const tree = await call('directory_tree', { path: '.' });
      expectFast(tree);
      expect(tree.result.structuredContent?.truncated).toBe(true);
      expect(tree.text).toContain('stopped by the entries limit');
      const search = await call('search_files', { path: '.', pattern: '**/*.nomatch' });
      expectFast(search);
      expect(search.result.structuredContent?.truncated).toBe(true);
      expect(search.text).toContain('stopped after visiting 2000 entries');
      const matchAll = await call('search_files', { path: 'many', pattern: '*' });
      expect((matchAll.result.structuredContent?.matches as unknown[]).length).toBeLessThanOrEqual(1000);
      expect(matchAll.result.structuredContent?.truncated).toBe(true);
    },
    TEST_TIMEOUT,
  );

  it(
    '200-level deep tree: directory_tree, search_files and grep_files answer within the time limit and report truncation',
    async () => {
      const deep = inRoot(...Array.from({ length: 200 }, () => 'd'));
      mkdirSync(deep, { recursive: true });
      writeFileSync(path.join(deep, 'leaf.txt'), 'needle\n');
      arm();

      const tree = await call('directory_tree', { path: '.' });
      expectFast(tree);
      expect(tree.isError).toBe(false);
      expect(tree.result.structuredContent?.truncated).toBe(true);
      expect(tree.text).toContain('deeper than 32 levels');
      const search = await call('search_files', { path: '.', pattern: '**/leaf.txt' });
      expectFast(search);
      expect(search.result.structuredContent?.truncated).toBe(true);
      expect(search.text).toContain('deeper than 32 levels were not searched');
      const grep = await call('grep_files', { path: '.', pattern: 'needle' });
      expectFast(grep);
      expect(grep.result.structuredContent?.truncated).toBe(true);
      // The leaf itself is still addressable by its (long) path.
      const leaf = await call('read_text_file', { path: `${'d/'.repeat(200)}leaf.txt` });
      expect(leaf.text).toBe('needle\n');
    },
    TEST_TIMEOUT,
  );

  it(
    'glob bombs for search_files and directory_tree: answered fast or refused',
    async () => {
      mkdirSync(inRoot('g'));
      for (let i = 0; i < 40; i++) writeFileSync(inRoot('g', `${'a'.repeat(200)}${i}`), '');
      writeFileSync(inRoot('g', `${'a'.repeat(100)}b`), '');
      arm();

      const bombs = [
        '*a*a*a*a*a*a*a*a*a*a*a*b',
        '**/*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c',
        '{a,b}'.repeat(30),
        '{1..100000000}',
        '**/'.repeat(300) + 'x',
        `${'{a,'.repeat(10)}b${'}'.repeat(10)}`,
        '['.repeat(500),
        '?'.repeat(1000),
      ];
      for (const pattern of bombs) {
        const found = await call('search_files', { path: '.', pattern });
        expectFast(found);
        expect(found.isError).toBe(false);
        const tree = await call('directory_tree', { path: '.', excludePatterns: [pattern] });
        expectFast(tree);
      }
      const hit = await call('search_files', { path: 'g', pattern: '*a*a*a*a*a*a*a*a*a*a*a*b' });
      expect(hit.result.structuredContent?.matches).toEqual([`g/${'a'.repeat(100)}b`]);

      const tooLong = await call('search_files', { path: '.', pattern: 'a'.repeat(2000) });
      expectRefused(tooLong, /limited to 1024 characters/);
      expectRefused(
        await call('search_files', { path: '.', pattern: '*', excludePatterns: ['x'.repeat(1025)] }),
      );
      expectRefused(
        await call('search_files', {
          path: '.',
          pattern: '*',
          excludePatterns: Array.from({ length: 65 }, (_, i) => `${i}`),
        }),
        /at most 64 patterns/,
      );
      expectRefused(
        await call('search_files', { path: '.', pattern: `${'{'.repeat(20)}a${'}'.repeat(20)}` }),
        /nested deeper/,
      );
      expectRefused(await call('search_files', { path: '.', pattern: '{a,b' }), /unclosed brace/);
      expectRefused(await call('directory_tree', { path: '.', excludePatterns: ['a'.repeat(2000)] }));
    },
    TEST_TIMEOUT,
  );

  it(
    'one 8 MiB line for grep_files: matched in its first 64 KiB, answered fast',
    async () => {
      writeFileSync(inRoot('minified.js'), `START${'x'.repeat(8 * 1024 * 1024)}END\n`);
      arm();
      const start = await call('grep_files', { path: 'minified.js', pattern: 'START' });
      expectFast(start);
      expect((start.result.structuredContent?.matches as unknown[]).length).toBe(1);
      const end = await call('grep_files', { path: 'minified.js', pattern: '(x|xx)+END' });
      expectFast(end);
      expect(end.result.structuredContent?.matches).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    "regex bombs for grep_files: '(a+)+$' and '(a|aa)*b' fast; backreferences and lookaround refused",
    async () => {
      writeFileSync(inRoot('as.txt'), `${'a'.repeat(50_000)}\n`.repeat(20) + `${'a'.repeat(30)}!\n`);
      arm();

      for (const pattern of ['(a+)+$', '(a|aa)*b', '(a*)*b', '(.*a){20}x', '(?:a?){30}a{30}', '^(a|a?)+$']) {
        const grep = await call('grep_files', { path: '.', pattern, maxMatches: 5 });
        expectFast(grep);
        expect(grep.isError).toBe(false);
      }
      const dollar = await call('grep_files', { path: 'as.txt', pattern: '(a+)+$' });
      expect((dollar.result.structuredContent?.matches as unknown[]).length).toBe(20);

      for (const pattern of [
        '(a)\\1',
        '(?=a)',
        '(?<=a)b',
        '(?!a)',
        'a{1000}{1000}',
        '((a{100}){100}){100}',
        '(',
      ]) {
        const grep = await call('grep_files', { path: '.', pattern });
        expectRefused(grep, /Refused the regex/);
        expectFast(grep, 500);
      }
      expectRefused(
        await call('grep_files', { path: '.', pattern: 'a'.repeat(2000) }),
        /limited to 1024 characters/,
      );
      expectRefused(await call('grep_files', { path: '.', pattern: 'a', include: '{'.repeat(20) }));
    },
    TEST_TIMEOUT,
  );

  it(
    "regex with a large linear constant ('[ab]{1000}c') over a long-lined file stays within searchTimeMs",
    async () => {
      await setup({ limits: { searchTimeMs: 500 } });
      // About 300 KB of lines that almost match: the RE2 NFA keeps ~1000 threads alive per input byte.
      writeFileSync(inRoot('near.txt'), `${'ab'.repeat(499)}c\n`.repeat(300));
      arm();

      const grep = await call('grep_files', { path: '.', pattern: '[ab]{1000}c' });
      expect(grep.isError).toBe(false);
      expect(grep.result.structuredContent?.matches).toEqual([]);
      // The tool promises "Bounded in ... time": the deadline must hold inside a file too, not only between files.
      expect({ ms: Math.round(grep.ms), withinDeadline: grep.ms < 500 + 1_000 }).toEqual({
        ms: Math.round(grep.ms),
        withinDeadline: true,
      });
    },
    TEST_TIMEOUT,
  );
});

describe('hostile workspace: policy', () => {
  it(
    'denied files (.env, .git/config, key.pem) hidden from listings and searches, refused by every tool',
    async () => {
      mkdirSync(inRoot('.git'));
      mkdirSync(inRoot('sub'));
      writeFileSync(inRoot('.env'), 'SECRET=env\n');
      writeFileSync(inRoot('.git/config'), 'SECRET=git\n');
      writeFileSync(inRoot('key.pem'), 'SECRET=pem\n');
      writeFileSync(inRoot('sub/.env.local'), 'SECRET=local\n');
      writeFileSync(inRoot('sub/id_rsa'), 'SECRET=rsa\n');
      writeFileSync(inRoot('visible.txt'), 'public\n');
      symlinkSync('.env', inRoot('alias.txt'));
      symlinkSync('.git', inRoot('gitlink'));
      arm();

      const list = await call('list_directory', { path: '.' });
      expect(list.text.split('\n').sort()).toEqual([
        '[DIR] sub',
        '[FILE] alias.txt',
        '[FILE] gitlink',
        '[FILE] visible.txt',
      ]);
      expect((await call('list_directory', { path: 'sub' })).text).toBe('');
      const search = await call('search_files', { path: '.', pattern: '**' });
      expect(search.result.structuredContent?.matches).toEqual([
        'alias.txt',
        'gitlink',
        'sub',
        'visible.txt',
      ]);
      const tree = await call('directory_tree', { path: '.' });
      expect(tree.text).not.toMatch(/\.env|\.git"|config|key\.pem|id_rsa/);
      const grep = await call('grep_files', { path: '.', pattern: 'SECRET' });
      expect(grep.result.structuredContent?.matches).toEqual([]);

      const deniedPaths = [
        '.env',
        './.env',
        'sub/../.env',
        `${ws.root}/.env`,
        '.git/config',
        '.git//config',
        '.git/',
        'key.pem',
        'sub/.env.local',
        'sub/id_rsa',
        'alias.txt',
        'gitlink/config',
      ];
      for (const p of deniedPaths) {
        const read = await call('read_text_file', { path: p });
        expectRefused(read, /protected by the workspace policy/);
        expect(read.text).not.toContain('SECRET');
        expectRefused(await call('get_file_info', { path: p }));
        expectRefused(await call('grep_files', { path: p, pattern: 'SECRET' }));
      }
      expectRefused(await call('list_directory', { path: '.git' }), /protected/);
      expectRefused(await call('list_directory', { path: 'gitlink' }), /protected/);
      expectRefused(await call('write_file', { path: '.env', content: 'x' }), /protected/);
      expectRefused(await call('write_file', { path: 'sub/.envrc', content: 'x' }), /protected/);
      expectRefused(await call('delete_file', { path: '.env' }), /protected/);
      expectRefused(await call('move_file', { source: '.env', destination: 'stolen.txt' }), /protected/);
      expectRefused(await call('move_file', { source: '.git', destination: 'notgit' }), /protected/);
      expectRefused(await call('move_file', { source: 'visible.txt', destination: 'new.pem' }), /protected/);
      expectRefused(await call('create_directory', { path: '.git/hooks' }), /protected/);
      const multi = await call('read_multiple_files', { paths: ['.env', 'key.pem', 'visible.txt'] });
      expect(multi.text).not.toContain('SECRET');
      expect(multi.text).toContain('public');

      expect(readFileSync(inRoot('.env'), 'utf8')).toBe('SECRET=env\n');
      expect(existsSync(inRoot('stolen.txt'))).toBe(false);
      expect(existsSync(inRoot('notgit'))).toBe(false);
      expect(existsSync(inRoot('sub/.envrc'))).toBe(false);
    },
    TEST_TIMEOUT,
  );

  it(
    'denied names in another case (.ENV, .Env, x.PEM, k.Key): refused by every tool, hidden from listings, trees and searches',
    async () => {
      const disguised = ['.ENV', '.Env', 'x.PEM', 'k.Key', 'sub/.ENV.local', '.GIT/config'];
      mkdirSync(inRoot('sub'));
      mkdirSync(inRoot('.GIT'));
      for (const name of disguised) writeFileSync(inRoot(name), `SECRET=${name}\n`);
      writeFileSync(inRoot('visible.txt'), 'public\n');
      arm();

      expect((await call('list_directory', { path: '.' })).text.split('\n').sort()).toEqual([
        '[DIR] sub',
        '[FILE] visible.txt',
      ]);
      const sized = await call('list_directory_with_sizes', { path: '.' });
      expect(sized.result.structuredContent?.entries).toEqual([
        expect.objectContaining({ name: 'sub' }),
        expect.objectContaining({ name: 'visible.txt' }),
      ]);
      expect((await call('list_directory', { path: 'sub' })).text).toBe('');
      const tree = await call('directory_tree', { path: '.' });
      expect(JSON.parse(tree.text)).toEqual([
        { name: 'sub', type: 'directory', children: [] },
        { name: 'visible.txt', type: 'file' },
      ]);
      const search = await call('search_files', { path: '.', pattern: '**' });
      expect(search.result.structuredContent?.matches).toEqual(['sub', 'visible.txt']);
      const grep = await call('grep_files', { path: '.', pattern: 'SECRET' });
      expect(grep.result.structuredContent?.matches).toEqual([]);

      for (const p of disguised) {
        expectRefused(await call('read_text_file', { path: p }), /protected by the workspace policy/);
        expectRefused(await call('read_media_file', { path: p }), /protected/);
        expectRefused(await call('get_file_info', { path: p }), /protected/);
        expectRefused(await call('grep_files', { path: p, pattern: 'SECRET' }), /protected/);
        expectRefused(await call('write_file', { path: p, content: 'x' }), /protected/);
        expectRefused(
          await call('edit_file', { path: p, edits: [{ oldText: 'SECRET', newText: 'x' }] }),
          /protected/,
        );
      }
      const multi = await call('read_multiple_files', { paths: [...disguised, 'visible.txt'] });
      expect(multi.text).not.toContain('SECRET');
      expect(multi.text).toContain('public');
      for (const name of disguised) expect(readFileSync(inRoot(name), 'utf8')).toBe(`SECRET=${name}\n`);
    },
    TEST_TIMEOUT,
  );

  it(
    'read-only workspace: write_file, edit_file, delete_file, move_file, create_directory refused, nothing changes',
    async () => {
      await setup({ readOnly: true });
      writeFileSync(inRoot('keep.txt'), 'keep\n');
      arm();
      const snapshotRoot = (): string =>
        readdirSync(ws.root, { recursive: true })
          .map(String)
          .sort()
          .map((name) => {
            const st = lstatSync(inRoot(name));
            return `${name}:${st.isFile() ? readFileSync(inRoot(name), 'utf8') : 'dir'}`;
          })
          .join('|');
      const before = snapshotRoot();

      const attempts: Array<[string, Record<string, unknown>]> = [
        ['write_file', { path: 'keep.txt', content: 'pwned' }],
        ['write_file', { path: 'new.txt', content: 'pwned' }],
        ['edit_file', { path: 'keep.txt', edits: [{ oldText: 'keep', newText: 'pwned' }] }],
        ['delete_file', { path: 'keep.txt' }],
        ['move_file', { source: 'keep.txt', destination: 'moved.txt' }],
        ['create_directory', { path: 'newdir' }],
      ];
      for (const [name, args] of attempts) {
        // The read-only client lacks the write scope...
        expectRefused(await call(name, args), /files:write scope/);
        // ...and a client that holds it is still stopped by the read-only sandbox.
        expectRefused(await callAsWriter(name, args), /read-only/);
      }
      expect(snapshotRoot()).toBe(before);
      const read = await call('read_text_file', { path: 'keep.txt' });
      expect(read.text).toBe('keep\n');
    },
    TEST_TIMEOUT,
  );
});
