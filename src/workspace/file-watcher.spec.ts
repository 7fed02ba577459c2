import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { configSchema } from '../config/config.schema.js';
import { FileWatcher } from './file-watcher.js';
import { Sandbox } from './sandbox.js';
import { SandboxRefusal } from './sandbox.errors.js';

let base: string;
let root: string;
let sandbox: Sandbox;
let watcher: FileWatcher;

beforeEach(async () => {
  base = mkdtempSync(path.join(os.tmpdir(), 'bastion-watch-'));
  root = path.join(base, 'ws');
  mkdirSync(path.join(root, 'dir'), { recursive: true });
  writeFileSync(path.join(root, 'dir/a.txt'), 'one');
  writeFileSync(path.join(root, 'dir/c.txt'), 'barrier');
  writeFileSync(path.join(base, 'outside.txt'), 'secret');
  symlinkSync(path.join(base, 'outside.txt'), path.join(root, 'escape.txt'));
  const { workspace } = configSchema.parse({ workspace: { root } });
  sandbox = await Sandbox.create(workspace);
  watcher = new FileWatcher({ debounceMs: 20 });
});
afterEach(() => {
  watcher.close();
  rmSync(base, { recursive: true, force: true });
});

/**
 * A listener that counts its calls; `reach(n)` resolves once it has been called n times. The file system's
 * events are real, so the wait is bounded (3 s) rather than timed.
 */
function counter() {
  const waiters = new Set<() => void>();
  const seen = {
    calls: 0,
    listener: () => {
      seen.calls++;
      for (const wake of [...waiters]) wake();
    },
    reach: (count: number, timeoutMs = 3000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`saw ${seen.calls} changes, wanted ${count}`));
        }, timeoutMs);
        const wake = () => {
          if (seen.calls < count) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
        wake();
      }),
  };
  return seen;
}

/**
 * Waits until a change to dir/c.txt, made now, has been reported: events of one directory arrive in order
 * and wait the same debounce, so anything an earlier change would have reported has been reported by then.
 * A check that nothing was reported, without a guess at how long to wait for it.
 */
async function barrier(watcher: FileWatcher): Promise<void> {
  const seen = counter();
  const stop = await watcher.watch(sandbox, 'workspace:///dir/c.txt', seen.listener);
  try {
    writeFileSync(path.join(root, 'dir/c.txt'), `barrier ${Math.random()}`);
    await seen.reach(1);
  } finally {
    stop();
  }
}

describe('FileWatcher', () => {
  it('reports a change to a watched file, including a replacement by rename (an atomic write)', async () => {
    const seen = counter();
    await watcher.watch(sandbox, 'workspace:///dir/a.txt', seen.listener);
    writeFileSync(path.join(root, 'dir/a.txt'), 'two');
    await seen.reach(1);
    writeFileSync(path.join(root, 'dir/.tmp'), 'three');
    renameSync(path.join(root, 'dir/.tmp'), path.join(root, 'dir/a.txt'));
    await seen.reach(2);
  });

  it('ignores other files in the same directory and stops after unsubscribe', async () => {
    const seen = counter();
    const stop = await watcher.watch(sandbox, 'workspace:///dir/a.txt', seen.listener);
    writeFileSync(path.join(root, 'dir/b.txt'), 'other');
    await barrier(watcher);
    expect(seen.calls).toBe(0);
    stop();
    expect(watcher.watchedDirectories).toBe(0);
    // Someone else watches the same file from now on: its change reaches them, and not the listener that left.
    const other = counter();
    await watcher.watch(sandbox, 'workspace:///dir/a.txt', other.listener);
    writeFileSync(path.join(root, 'dir/a.txt'), 'after');
    await other.reach(1);
    await barrier(watcher);
    expect(seen.calls).toBe(0);
  });

  it('calls one listener once per change however often it subscribed, until every subscription ends', async () => {
    const seen = counter();
    const first = await watcher.watch(sandbox, 'workspace:///dir/a.txt', seen.listener);
    await watcher.watch(sandbox, 'workspace:///dir/a.txt', seen.listener);
    first();
    writeFileSync(path.join(root, 'dir/a.txt'), 'changed');
    await seen.reach(1);
    await barrier(watcher);
    expect(seen.calls).toBe(1);
  });

  it('refuses what a read could not reach: a link out, a missing file, a directory, a foreign URI', async () => {
    const listener = () => undefined;
    for (const uri of [
      'workspace:///escape.txt',
      'workspace:///missing.txt',
      'workspace:///dir',
      'workspace:///../outside.txt',
      'file:///etc/passwd',
    ]) {
      await expect(watcher.watch(sandbox, uri, listener)).rejects.toBeInstanceOf(SandboxRefusal);
    }
    expect(watcher.watchedDirectories).toBe(0);
  });

  it("gives each owner its own budget of directories: one client's watches cannot silence another's", async () => {
    const budgeted = new FileWatcher({ debounceMs: 20, maxDirectories: 1 });
    try {
      mkdirSync(path.join(root, 'second'));
      writeFileSync(path.join(root, 'second/b.txt'), 'two');
      writeFileSync(path.join(root, 'top.txt'), 'top');
      const listener = () => undefined;
      const stopA = await budgeted.watch(sandbox, 'workspace:///dir/a.txt', listener, 'alice');
      // The same directory again costs alice nothing more.
      await budgeted.watch(sandbox, 'workspace:///dir/a.txt', () => undefined, 'alice');
      await expect(budgeted.watch(sandbox, 'workspace:///second/b.txt', listener, 'alice')).rejects.toThrow(
        /at most 1 directories are watched at once for one client/,
      );
      // Bob's budget is his own, whatever alice holds.
      const stopB = await budgeted.watch(sandbox, 'workspace:///second/b.txt', listener, 'bob');
      await budgeted.watch(sandbox, 'workspace:///dir/a.txt', () => undefined, 'bob').catch(() => undefined);
      expect(budgeted.watchedDirectories).toBe(2);
      stopA();
      stopB();
    } finally {
      budgeted.close();
    }
  });

  it('stops watching a directory once the last watch in it ends', async () => {
    const stop = await watcher.watch(sandbox, 'workspace:///dir/a.txt', () => undefined, 'alice');
    const again = await watcher.watch(sandbox, 'workspace:///dir/a.txt', () => undefined, 'bob');
    expect(watcher.watchedDirectories).toBe(1);
    stop();
    expect(watcher.watchedDirectories).toBe(1);
    again();
    expect(watcher.watchedDirectories).toBe(0);
  });
});
