import { RE2JS } from 're2js';

/**
 * Glob patterns compiled to RE2, whose matching time is linear in the input: a pattern such as
 * `*a*a*a*a*a*a*b` cannot stall the server as backtracking matchers can, and braces become alternations
 * instead of being expanded into a list (no `{1..1000000}` or nested-brace blow-up).
 *
 * Supported: `**` (any number of path segments), `*` and `?` (within a segment), `[abc]`, `[!a-z]`,
 * `{a,b}` (nestable), `\` escapes. Dotfiles are matched like any other name.
 */
export interface GlobMatcher {
  (relativePath: string): boolean;
}

const MAX_BRACE_DEPTH = 10;

export class GlobSyntaxError extends Error {}

export function compileGlob(pattern: string): GlobMatcher {
  const re = RE2JS.compile(`^(?:${globToRegexSource(pattern)})$`);
  return (relativePath) => re.matches(relativePath);
}

export interface GlobOptions {
  /** Match letters regardless of case (`*.pem` matches `KEY.PEM`). */
  ignoreCase?: boolean;
}

/** Any of the patterns matches. */
export function compileGlobs(patterns: readonly string[], options: GlobOptions = {}): GlobMatcher {
  if (patterns.length === 0) return () => false;
  const source = `^(?:${patterns.map((p) => `(?:${globToRegexSource(p)})`).join('|')})$`;
  const re = RE2JS.compile(source, options.ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
  return (relativePath) => re.matches(relativePath);
}

export function globToRegexSource(pattern: string): string {
  let out = '';
  let depth = 0;
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw new GlobSyntaxError('pattern ends with an escape character');
      out += escapeRegex(next);
      i += 2;
      continue;
    }
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        const atSegmentStart = i === 0 || pattern[i - 1] === '/';
        let j = i + 2;
        while (pattern[j] === '*') j++;
        const atSegmentEnd = j === pattern.length || pattern[j] === '/';
        if (atSegmentStart && atSegmentEnd) {
          if (pattern[j] === '/') {
            out += '(?:[^/]*/)*'; // `**/`: zero or more whole segments
            i = j + 1;
          } else {
            out += '.*'; // trailing `**`: everything below
            i = j;
          }
          continue;
        }
        out += '[^/]*';
        i = j;
        continue;
      }
      out += '[^/]*';
      i++;
      continue;
    }
    if (c === '?') {
      out += '[^/]';
      i++;
      continue;
    }
    if (c === '[') {
      const end = classEnd(pattern, i);
      if (end === -1) {
        out += '\\[';
        i++;
        continue;
      }
      out += classSource(pattern.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    if (c === '{') {
      depth++;
      if (depth > MAX_BRACE_DEPTH) throw new GlobSyntaxError(`braces nested deeper than ${MAX_BRACE_DEPTH}`);
      out += '(?:';
      i++;
      continue;
    }
    if (c === ',' && depth > 0) {
      out += '|';
      i++;
      continue;
    }
    if (c === '}' && depth > 0) {
      depth--;
      out += ')';
      i++;
      continue;
    }
    out += escapeRegex(c);
    i++;
  }
  if (depth > 0) throw new GlobSyntaxError('unclosed brace');
  return out;
}

function classEnd(pattern: string, start: number): number {
  let j = start + 1;
  if (pattern[j] === '!' || pattern[j] === '^') j++;
  if (pattern[j] === ']') j++;
  while (j < pattern.length && pattern[j] !== ']') {
    if (pattern[j] === '/') return -1;
    j++;
  }
  return j < pattern.length ? j : -1;
}

function classSource(body: string): string {
  let negate = false;
  if (body.startsWith('!') || body.startsWith('^')) {
    negate = true;
    body = body.slice(1);
  }
  const inner = body.replace(/[\\\]^[]/g, (ch) => `\\${ch}`);
  return negate ? `[^/${inner}]` : `[${inner}]`;
}

function escapeRegex(ch: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(ch) ? `\\${ch}` : ch;
}
