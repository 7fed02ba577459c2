import type { Dirent } from 'node:fs';
import type { DirHandle } from './dir-handle.js';
import { LoopTurns } from './loop-turns.js';
import type { Sandbox } from './sandbox.js';

export type EntryType = 'file' | 'directory' | 'symlink' | 'other';

export interface WalkEntry {
  /** Path relative to the directory the walk started from. */
  path: string;
  /** Real path relative to the workspace root. */
  rel: string;
  name: string;
  type: EntryType;
  depth: number;
  /** The open directory holding the entry (valid during the visit only). */
  dir: DirHandle;
}

export type StopReason = 'entries' | 'time' | 'matches';

export interface WalkOptions {
  maxEntries: number;
  maxDepth: number;
  /** Epoch milliseconds after which the walk stops. */
  deadline: number;
  signal?: AbortSignal;
  /** Paths (relative to the start) to leave out, with everything below them. */
  exclude?: (path: string) => boolean;
}

export interface WalkOutcome {
  visited: number;
  /** Why the walk stopped early, if it did. */
  stopped?: StopReason;
  /** True when some directory was listed but not entered because of the depth bound. */
  depthLimited: boolean;
}

interface WalkState extends WalkOutcome {
  turns: LoopTurns;
}

/** Returning 'stop' ends the walk (enough matches were found); 'time' ends it as out of time. */
export type VisitVerdict = void | 'stop' | 'time';
export type Visitor = (entry: WalkEntry) => VisitVerdict | Promise<VisitVerdict>;

/**
 * Depth-first walk under an open directory, bounded in entries, depth and time. Subdirectories are opened
 * through their parent's descriptor without following symlinks, so a walk never leaves the tree it started
 * in; hidden (denied) entries are neither reported nor entered. At most `maxDepth` descriptors are open.
 */
export async function walk(sandbox: Sandbox, start: DirHandle, visit: Visitor, options: WalkOptions): Promise<WalkOutcome> {
  const state: WalkState = { visited: 0, depthLimited: false, turns: new LoopTurns() };
  await walkDir(sandbox, start, '', 0, visit, options, state);
  return { visited: state.visited, depthLimited: state.depthLimited, ...(state.stopped ? { stopped: state.stopped } : {}) };
}

async function walkDir(
  sandbox: Sandbox,
  dir: DirHandle,
  prefix: string,
  depth: number,
  visit: Visitor,
  options: WalkOptions,
  state: WalkState,
): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await dir.readdir();
  } catch {
    return; // unreadable directories are skipped, as `find` does
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const dirent of entries) {
    if (state.stopped) return;
    if (options.signal?.aborted || Date.now() > options.deadline) {
      state.stopped = 'time';
      return;
    }
    const rel = dir.childRel(dirent.name);
    const path = prefix ? `${prefix}/${dirent.name}` : dirent.name;
    if (!sandbox.visible(rel) || options.exclude?.(path)) continue;
    if (state.visited >= options.maxEntries) {
      state.stopped = 'entries';
      return;
    }
    state.visited++;
    const type = entryType(dirent);
    const entry: WalkEntry = { path, rel, name: dirent.name, type, depth, dir };
    const verdict = await visit(entry);
    await state.turns.take();
    if (verdict) {
      state.stopped = verdict === 'stop' ? 'matches' : 'time';
      return;
    }
    if (type !== 'directory') continue;
    if (depth + 1 >= options.maxDepth) {
      state.depthLimited = true;
      continue;
    }
    let child: DirHandle;
    try {
      child = await dir.openDir(dirent.name);
    } catch {
      continue; // replaced by a link or removed since it was listed: not entered
    }
    try {
      await walkDir(sandbox, child, path, depth + 1, visit, options, state);
    } finally {
      await child.close();
    }
  }
}

export function entryType(dirent: Dirent): EntryType {
  if (dirent.isDirectory()) return 'directory';
  if (dirent.isFile()) return 'file';
  if (dirent.isSymbolicLink()) return 'symlink';
  return 'other';
}
