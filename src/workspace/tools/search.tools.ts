import { RE2JS } from 're2js';
import { z } from 'zod';
import { dataResult, defineTool } from '../../tools/tool.js';
import { compileGlob, compileGlobs } from '../glob.js';
import type { OpenedFile, Sandbox } from '../sandbox.js';
import { walk, type VisitVerdict, type WalkEntry, type WalkOutcome } from '../workspace-walk.js';
import { checkPatterns, compilePattern } from './patterns.js';

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;
const MAX_LINE_CHARS = 500;
/**
 * A line is matched in its first this many characters. The regex engine is linear, but one multi-megabyte
 * line (minified code, a data dump) would still hold the event loop for longer than the search deadline.
 */
const MAX_SCANNED_LINE_CHARS = 64 * 1024;
const BINARY_SNIFF_BYTES = 8 * 1024;

function walkOptions(sandbox: Sandbox, signal: AbortSignal, exclude?: (path: string) => boolean) {
  return {
    maxEntries: sandbox.limits.maxWalkEntries,
    maxDepth: sandbox.limits.maxDepth,
    deadline: Date.now() + sandbox.limits.searchTimeMs,
    signal,
    ...(exclude ? { exclude } : {}),
  };
}

function stopNote(outcome: WalkOutcome, limits: Sandbox['limits']): string | null {
  switch (outcome.stopped) {
    case 'matches':
      return `(stopped after ${limits.maxMatches} matches)`;
    case 'entries':
      return `(stopped after visiting ${limits.maxWalkEntries} entries)`;
    case 'time':
      return `(stopped after ${limits.searchTimeMs} ms)`;
    default:
      return outcome.depthLimited ? `(directories deeper than ${limits.maxDepth} levels were not searched)` : null;
  }
}

export const searchFiles = defineTool({
  name: 'search_files',
  title: 'Search Files',
  description:
    'Recursively search for files and directories whose path matches a glob pattern. Patterns match paths ' +
    "relative to the search directory: '*.ext' matches in that directory, '**/*.ext' in all subdirectories. " +
    'Returns workspace-relative paths. Bounded in matches, entries and time.',
  scopes: ['files:read'],
  annotations: READ_ONLY,
  input: z.object({
    path: z.string().describe('Directory to search, relative to the workspace root.'),
    pattern: z.string().describe('Glob pattern, for example **/*.ts'),
    excludePatterns: z.array(z.string()).optional().default([]),
  }),
  output: z.object({ content: z.string(), matches: z.array(z.string()), truncated: z.boolean() }),
  async handler({ path, pattern, excludePatterns }, { sandbox, signal }) {
    checkPatterns(sandbox, [pattern, ...excludePatterns]);
    const matches = compilePattern('glob', pattern, () => compileGlob(pattern));
    const excluded = compilePattern('glob', excludePatterns.join(', '), () => compileGlobs(excludePatterns));
    const dir = await sandbox.openDir(path);
    const found: string[] = [];
    let outcome: WalkOutcome;
    try {
      outcome = await walk(
        sandbox,
        dir,
        (entry) => {
          if (!matches(entry.path)) return;
          found.push(entry.rel);
          if (found.length >= sandbox.limits.maxMatches) return 'stop';
        },
        walkOptions(sandbox, signal, excluded),
      );
    } finally {
      await dir.close();
    }
    const note = stopNote(outcome, sandbox.limits);
    const lines = found.length > 0 ? [...found] : ['No matches found'];
    if (note) lines.push(note);
    const text = lines.join('\n');
    return dataResult(text, { content: text, matches: found, truncated: note !== null });
  },
});

interface GrepMatch {
  path: string;
  line: number;
  text: string;
}

export const grepFiles = defineTool({
  name: 'grep_files',
  title: 'Grep Files',
  description:
    'Search file contents for a regular expression (RE2 syntax: no backreferences or lookaround, and no ' +
    'pattern can take more than linear time). Returns matching lines as path:line: text. Binary and ' +
    'oversized files are skipped; a very long line is matched in its first 64 KiB. Bounded in matches, ' +
    'bytes, entries and time.',
  scopes: ['files:read'],
  annotations: READ_ONLY,
  input: z.object({
    path: z.string().describe('File or directory to search, relative to the workspace root.'),
    pattern: z.string().min(1).describe('Regular expression (RE2 syntax).'),
    include: z.string().optional().describe('Only search files whose path matches this glob, for example **/*.ts'),
    caseSensitive: z.boolean().optional().default(true),
    maxMatches: z.number().int().positive().optional().describe('Stop after this many matching lines.'),
  }),
  output: z.object({
    content: z.string(),
    matches: z.array(z.object({ path: z.string(), line: z.number(), text: z.string() })),
    filesSearched: z.number(),
    truncated: z.boolean(),
  }),
  async handler({ path, pattern, include, caseSensitive, maxMatches }, { sandbox, signal, progress }) {
    checkPatterns(sandbox, include ? [pattern, include] : [pattern]);
    const regex = compilePattern('regex', pattern, () =>
      RE2JS.compile(pattern, caseSensitive ? 0 : RE2JS.CASE_INSENSITIVE),
    );
    const included = include ? compilePattern('glob', include, () => compileGlob(include)) : () => true;
    const limit = Math.min(maxMatches ?? sandbox.limits.maxMatches, sandbox.limits.maxMatches);
    const byteBudget = { left: Math.floor(sandbox.limits.maxResponseBytes / 2) };
    const found: GrepMatch[] = [];
    let filesSearched = 0;

    const options = walkOptions(sandbox, signal);
    // The deadline holds inside a file too: one long file must not outlast searchTimeMs.
    const scan = (rel: string, text: string): VisitVerdict => {
      let lineNumber = 0;
      for (const line of text.split('\n')) {
        lineNumber++;
        if (signal.aborted || Date.now() > options.deadline) return 'time';
        const scanned = line.length > MAX_SCANNED_LINE_CHARS ? line.slice(0, MAX_SCANNED_LINE_CHARS) : line;
        if (!regex.matcher(scanned).find()) continue;
        const shown = line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line;
        byteBudget.left -= shown.length + rel.length + 16;
        found.push({ path: rel, line: lineNumber, text: shown.replace(/\r$/, '') });
        if (found.length >= limit || byteBudget.left <= 0) return 'stop';
      }
    };
    const searchFile = async (entry: WalkEntry): Promise<VisitVerdict> => {
      if (entry.type !== 'file' || !included(entry.path)) return;
      const text = await searchableText(openQuietly(sandbox, entry), sandbox.limits.maxFileBytes);
      if (text === null) return;
      filesSearched++;
      if (progress && filesSearched % PROGRESS_EVERY_FILES === 0) {
        progress({ progress: filesSearched, message: `${filesSearched} files searched` }).catch(() => {});
      }
      return scan(entry.rel, text);
    };

    const target = await sandbox.inspect(path);
    let outcome: WalkOutcome;
    if (target.stats.isFile()) {
      const file = await sandbox.openFile(path);
      const text = await searchableText(file, sandbox.limits.maxFileBytes);
      filesSearched = text === null ? 0 : 1;
      const verdict = text === null ? undefined : scan(file.rel, text);
      outcome = { visited: 1, depthLimited: false, ...(verdict ? { stopped: verdict === 'stop' ? ('matches' as const) : ('time' as const) } : {}) };
    } else {
      const dir = await sandbox.openDir(path);
      try {
        outcome = await walk(sandbox, dir, searchFile, options);
      } finally {
        await dir.close();
      }
    }
    const note = stopNote(outcome, { ...sandbox.limits, maxMatches: limit });
    const lines = found.map((m) => `${m.path}:${m.line}: ${m.text}`);
    if (lines.length === 0) lines.push('No matches found');
    if (note) lines.push(note);
    const text = lines.join('\n');
    return dataResult(text, { content: text, matches: found, filesSearched, truncated: note !== null });
  },
});

/** How often grep_files reports progress to a caller that asked for it (a progressToken). */
const PROGRESS_EVERY_FILES = 100;

/** The text of an opened file within the size bound, or null for binary or oversized files. Closes the handle. */
async function searchableText(file: OpenedFile | null, maxBytes: number): Promise<string | null> {
  if (!file) return null;
  const { handle, stats } = file;
  try {
    if (stats.size > maxBytes) return null;
    const buffer = Buffer.allocUnsafe(stats.size);
    const bytes = buffer.subarray(0, await handle.read(buffer, 0, stats.size, 0));
    if (bytes.subarray(0, BINARY_SNIFF_BYTES).includes(0)) return null;
    return bytes.toString('utf8');
  } finally {
    handle.close();
  }
}

/**
 * Opens a file met on a walk under the sandbox's read rules; null when it is gone or refused (a link, a race,
 * a special file, a hard link), so a walk skips it silently as `grep -r` skips what it cannot read.
 */
function openQuietly(sandbox: Sandbox, entry: WalkEntry): OpenedFile | null {
  try {
    return sandbox.openFileIn(entry.dir, entry.name, entry.rel);
  } catch {
    return null;
  }
}
