import { GlobSyntaxError } from '../glob.js';
import type { Sandbox } from '../sandbox.js';
import { SandboxRefusal } from '../sandbox.errors.js';

const MAX_PATTERNS = 64;

/** Refuses pattern lists that are too long or too many, before any is compiled. */
export function checkPatterns(sandbox: Sandbox, patterns: readonly string[]): void {
  if (patterns.length > MAX_PATTERNS) {
    throw new SandboxRefusal('limit_exceeded', `Refused: at most ${MAX_PATTERNS} patterns.`);
  }
  for (const pattern of patterns) {
    if (pattern.length > sandbox.limits.maxPatternLength) {
      throw new SandboxRefusal('limit_exceeded', `Refused: patterns are limited to ${sandbox.limits.maxPatternLength} characters.`);
    }
  }
}

/** Runs a pattern compiler, turning syntax errors into refusals the caller can act on. */
export function compilePattern<T>(kind: 'glob' | 'regex', pattern: string, compile: () => T): T {
  try {
    return compile();
  } catch (error) {
    const why = error instanceof GlobSyntaxError || error instanceof Error ? error.message : 'invalid syntax';
    throw new SandboxRefusal('invalid_pattern', `Refused the ${kind} ${JSON.stringify(pattern.slice(0, 100))}: ${why}.`);
  }
}
