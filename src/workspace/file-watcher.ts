import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { pathFromWorkspaceUri } from './media-types.js';
import type { Sandbox } from './sandbox.js';
import { SandboxRefusal } from './sandbox.errors.js';

type Listener = () => void;

interface WatchedDir {
  watcher: FSWatcher;
  /** Listeners by file name, each with the number of subscriptions that added it. */
  files: Map<string, Map<Listener, number>>;
  timers: Map<string, NodeJS.Timeout>;
}

export interface FileWatcherOptions {
  /** Changes to one file within this window are reported once (an atomic write is several events). */
  debounceMs?: number;
  /** At most this many directories are watched at once for one owner (a principal). */
  maxDirectories?: number;
  /** At most this many directories are watched at once in all (each is one inotify watch). */
  maxTotalDirectories?: number;
}

/**
 * Tells subscribers when a workspace file changes, for resource subscriptions. Each file is watched through
 * its real parent directory, so a file replaced by an atomic write (a rename over it) is still followed.
 * Paths go through the sandbox first: a subscription can only watch what a read could reach. Each owner (a
 * principal) has its own budget of directories, so one client's subscriptions cannot use up another's.
 */
export class FileWatcher {
  private readonly dirs = new Map<string, WatchedDir>();
  /** The directories each owner watches, with the number of its watches in each. */
  private readonly owners = new Map<string, Map<string, number>>();
  private readonly debounceMs: number;
  private readonly maxDirectories: number;
  private readonly maxTotalDirectories: number;

  constructor(options: FileWatcherOptions = {}) {
    this.debounceMs = options.debounceMs ?? 50;
    this.maxDirectories = options.maxDirectories ?? 256;
    this.maxTotalDirectories = options.maxTotalDirectories ?? 4096;
  }

  /**
   * Calls `listener` after each change to the file a workspace:/// URI names, until the returned function is
   * called. The same listener added twice for one file is called once per change. Throws SandboxRefusal
   * when the URI names nothing a read could reach, or when the owner's budget of directories is spent.
   */
  async watch(sandbox: Sandbox, uri: string, listener: Listener, owner = ''): Promise<() => void> {
    const rel = pathFromWorkspaceUri(uri);
    if (rel === null) throw new SandboxRefusal('not_found', `${uri} is not a workspace resource.`);
    const { stats, real } = await sandbox.inspect(rel);
    if (!stats.isFile()) throw new SandboxRefusal('is_a_directory', `${uri} is not a file.`);
    const dirPath = path.dirname(real);
    const name = path.basename(real);
    this.charge(owner, dirPath);
    let dir: WatchedDir;
    try {
      dir = this.dirs.get(dirPath) ?? this.open(dirPath);
    } catch (error) {
      this.refund(owner, dirPath);
      throw error;
    }
    const listeners = dir.files.get(name) ?? new Map<Listener, number>();
    dir.files.set(name, listeners);
    listeners.set(listener, (listeners.get(listener) ?? 0) + 1);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.refund(owner, dirPath);
      this.remove(dirPath, name, listener);
    };
  }

  /** Number of directories watched now (each one inotify watch). */
  get watchedDirectories(): number {
    return this.dirs.size;
  }

  close(): void {
    for (const dir of this.dirs.values()) this.closeDir(dir);
    this.dirs.clear();
    this.owners.clear();
  }

  /** Counts a watch against its owner's budget; refuses a directory beyond it. */
  private charge(owner: string, dirPath: string): void {
    const dirs = this.owners.get(owner) ?? new Map<string, number>();
    if (!dirs.has(dirPath) && dirs.size >= this.maxDirectories) {
      throw new SandboxRefusal(
        'too_large',
        `Refused: at most ${this.maxDirectories} directories are watched at once for one client.`,
      );
    }
    dirs.set(dirPath, (dirs.get(dirPath) ?? 0) + 1);
    this.owners.set(owner, dirs);
  }

  private refund(owner: string, dirPath: string): void {
    const dirs = this.owners.get(owner);
    const left = (dirs?.get(dirPath) ?? 1) - 1;
    if (left > 0) dirs?.set(dirPath, left);
    else dirs?.delete(dirPath);
    if (dirs?.size === 0) this.owners.delete(owner);
  }

  private open(dirPath: string): WatchedDir {
    if (this.dirs.size >= this.maxTotalDirectories) {
      throw new SandboxRefusal('too_large', `Refused: at most ${this.maxTotalDirectories} directories are watched at once.`);
    }
    const dir: WatchedDir = { watcher: watch(dirPath, { persistent: false }), files: new Map(), timers: new Map() };
    dir.watcher.on('change', (_event, filename) => {
      const name = filename?.toString();
      if (name && dir.files.has(name)) this.changed(dir, name);
    });
    // A watched directory that goes away (removed, renamed) ends its watches; subscribers are told once.
    dir.watcher.on('error', () => {
      for (const name of dir.files.keys()) this.notify(dir, name);
      this.closeDir(dir);
      this.dirs.delete(dirPath);
    });
    this.dirs.set(dirPath, dir);
    return dir;
  }

  private changed(dir: WatchedDir, name: string): void {
    if (dir.timers.has(name)) return;
    const timer = setTimeout(() => {
      dir.timers.delete(name);
      this.notify(dir, name);
    }, this.debounceMs);
    timer.unref();
    dir.timers.set(name, timer);
  }

  private notify(dir: WatchedDir, name: string): void {
    for (const listener of dir.files.get(name)?.keys() ?? []) {
      try {
        listener();
      } catch {
        // one subscriber's failure must not stop the others
      }
    }
  }

  private remove(dirPath: string, name: string, listener: Listener): void {
    const dir = this.dirs.get(dirPath);
    const listeners = dir?.files.get(name);
    if (!dir || !listeners) return;
    const count = (listeners.get(listener) ?? 1) - 1;
    if (count > 0) listeners.set(listener, count);
    else listeners.delete(listener);
    if (listeners.size > 0) return;
    dir.files.delete(name);
    clearTimeout(dir.timers.get(name));
    dir.timers.delete(name);
    if (dir.files.size === 0) {
      this.closeDir(dir);
      this.dirs.delete(dirPath);
    }
  }

  private closeDir(dir: WatchedDir): void {
    for (const timer of dir.timers.values()) clearTimeout(timer);
    dir.watcher.close();
  }
}
