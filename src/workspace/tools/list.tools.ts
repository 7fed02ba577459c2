import { z } from 'zod';
import { dataResult, defineTool } from '../../tools/tool.js';
import { compileGlobs } from '../glob.js';
import type { DirHandle } from '../dir-handle.js';
import type { Sandbox } from '../sandbox.js';
import { entryType, walk, type EntryType } from '../workspace-walk.js';
import { formatSize } from './format.js';
import { checkPatterns, compilePattern } from './patterns.js';

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;
const pathArg = z.string().describe('Directory path, relative to the workspace root ("." for the root).');

interface Listed {
  name: string;
  type: EntryType;
  size?: number;
  modified?: string;
}

async function listEntries(sandbox: Sandbox, dir: DirHandle, withSizes: boolean): Promise<{ entries: Listed[]; truncated: boolean }> {
  const all = (await dir.readdir()).filter((d) => sandbox.visible(dir.childRel(d.name)));
  const limit = sandbox.limits.maxListEntries;
  const chosen = all.slice(0, limit);
  const entries = await Promise.all(
    chosen.map(async (d): Promise<Listed> => {
      const entry: Listed = { name: d.name, type: entryType(d) };
      if (withSizes) {
        const stats = await dir.lstat(d.name).catch(() => null);
        entry.size = stats && !stats.isDirectory() ? stats.size : 0;
        if (stats) entry.modified = stats.mtime.toISOString();
      }
      return entry;
    }),
  );
  return { entries, truncated: all.length > limit };
}

function label(type: EntryType): string {
  return type === 'directory' ? '[DIR]' : '[FILE]';
}

const entrySchema = z.object({
  name: z.string(),
  type: z.enum(['file', 'directory', 'symlink', 'other']),
  size: z.number().optional(),
  modified: z.string().optional(),
});

export const listDirectory = defineTool({
  name: 'list_directory',
  title: 'List Directory',
  description:
    'List the files and directories in a directory. Entries are marked [DIR] or [FILE]. Protected files ' +
    '(secrets, .git) are not shown.',
  scopes: ['files:read'],
  annotations: READ_ONLY,
  input: z.object({ path: pathArg }),
  output: z.object({ content: z.string(), entries: z.array(entrySchema), truncated: z.boolean() }),
  async handler({ path }, { sandbox }) {
    const dir = await sandbox.openDir(path);
    try {
      const { entries, truncated } = await listEntries(sandbox, dir, false);
      const lines = entries.map((e) => `${label(e.type)} ${e.name}`);
      if (truncated) lines.push(`(listing stopped at ${sandbox.limits.maxListEntries} entries)`);
      const text = lines.join('\n');
      return dataResult(text, { content: text, entries, truncated });
    } finally {
      await dir.close();
    }
  },
});

export const listDirectoryWithSizes = defineTool({
  name: 'list_directory_with_sizes',
  title: 'List Directory with Sizes',
  description:
    'List the files and directories in a directory with their sizes, sorted by name or size, followed by a ' +
    'summary of the totals.',
  scopes: ['files:read'],
  annotations: READ_ONLY,
  input: z.object({
    path: pathArg,
    sortBy: z.enum(['name', 'size']).optional().default('name').describe('Sort entries by name or size'),
  }),
  output: z.object({ content: z.string(), entries: z.array(entrySchema), truncated: z.boolean() }),
  async handler({ path, sortBy }, { sandbox }) {
    const dir = await sandbox.openDir(path);
    try {
      const { entries, truncated } = await listEntries(sandbox, dir, true);
      entries.sort((a, b) => (sortBy === 'size' ? (b.size ?? 0) - (a.size ?? 0) : a.name.localeCompare(b.name)));
      const files = entries.filter((e) => e.type !== 'directory');
      const total = files.reduce((sum, e) => sum + (e.size ?? 0), 0);
      const lines = entries.map(
        (e) => `${label(e.type)} ${e.name.padEnd(30)} ${e.type === 'directory' ? '' : formatSize(e.size ?? 0).padStart(10)}`,
      );
      lines.push('', `Total: ${files.length} files, ${entries.length - files.length} directories`, `Combined size: ${formatSize(total)}`);
      if (truncated) lines.push(`(listing stopped at ${sandbox.limits.maxListEntries} entries)`);
      const text = lines.join('\n');
      return dataResult(text, { content: text, entries, truncated });
    } finally {
      await dir.close();
    }
  },
});

interface TreeNode {
  name: string;
  type: 'file' | 'directory';
  children?: TreeNode[];
}

export const directoryTree = defineTool({
  name: 'directory_tree',
  title: 'Directory Tree',
  description:
    "Get a recursive tree of files and directories as JSON. Each entry has 'name' and 'type' (file or " +
    "directory); directories have a 'children' array. Bounded in depth, entries and time; excludePatterns " +
    'are globs matched against paths relative to the given directory.',
  scopes: ['files:read'],
  annotations: READ_ONLY,
  input: z.object({
    path: pathArg,
    excludePatterns: z.array(z.string()).optional().default([]),
  }),
  output: z.object({ content: z.string(), truncated: z.boolean() }),
  async handler({ path, excludePatterns }, { sandbox, signal }) {
    checkPatterns(sandbox, excludePatterns);
    const excluded = compilePattern('glob', excludePatterns.join(', '), () =>
      compileGlobs(excludePatterns.flatMap((p) => (p.includes('*') ? [p] : [p, `**/${p}`, `**/${p}/**`]))),
    );
    const dir = await sandbox.openDir(path);
    const root: TreeNode[] = [];
    const directories = new Map<string, TreeNode[]>([['', root]]);
    let outcome;
    try {
      outcome = await walk(
        sandbox,
        dir,
        (entry) => {
          const parent = directories.get(entry.path.includes('/') ? entry.path.slice(0, entry.path.lastIndexOf('/')) : '');
          if (!parent) return;
          const node: TreeNode = { name: entry.name, type: entry.type === 'directory' ? 'directory' : 'file' };
          if (entry.type === 'directory') {
            node.children = [];
            directories.set(entry.path, node.children);
          }
          parent.push(node);
        },
        {
          maxEntries: sandbox.limits.maxWalkEntries,
          maxDepth: sandbox.limits.maxDepth,
          deadline: Date.now() + sandbox.limits.searchTimeMs,
          signal,
          exclude: (p) => excluded(p),
        },
      );
    } finally {
      await dir.close();
    }
    const truncated = outcome.stopped !== undefined || outcome.depthLimited;
    let text = JSON.stringify(root, null, 2);
    if (truncated) text += `\n(tree incomplete: ${outcome.stopped ? `stopped by the ${outcome.stopped} limit` : `deeper than ${sandbox.limits.maxDepth} levels`})`;
    return dataResult(text, { content: text, truncated });
  },
});
