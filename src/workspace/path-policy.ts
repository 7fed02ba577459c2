import path from 'node:path';
import { compileGlobs, type GlobMatcher } from './glob.js';
import { quote, SandboxRefusal } from './sandbox.errors.js';

/** Names Bastion gives its own temporary files; never listed, never addressable. */
export const TEMP_PREFIX = '.bastion-tmp-';

const URL_SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;
const DRIVE_LETTER = /^[a-zA-Z]:(?:[\\/]|$)/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Layer one of the sandbox: pure, lexical rules over the path a client sent. No filesystem access here;
 * symlinks are the resolver's job. Built once from validated config and never mutated.
 */
export class PathPolicy {
  private readonly denied: GlobMatcher;
  /** Absolute prefixes under which a client may name a path: the canonical root and the root as configured. */
  private readonly absoluteRoots: readonly string[];

  constructor(
    /** The canonical (realpath'd) workspace root. */
    readonly root: string,
    denyPatterns: readonly string[],
    configuredRoot: string = root,
  ) {
    // Security: case-insensitive, because on a case-insensitive filesystem (macOS, Windows shares) `.ENV`
    // names the same file as `.env`; on other systems refusing `.ENV` too errs on the closed side.
    this.denied = compileGlobs(denyPatterns, { ignoreCase: true });
    this.absoluteRoots = [...new Set([root, path.resolve(configuredRoot)])];
  }

  /**
   * Turns a client path into a normalized workspace-relative path ('' for the root), or refuses it.
   * Relative paths are taken from the root; absolute paths must lie inside it.
   */
  toRelative(clientPath: string): string {
    if (typeof clientPath !== 'string' || clientPath.length === 0) {
      throw new SandboxRefusal('invalid_path', 'A path is required.');
    }
    // Security: a NUL byte truncates paths in the kernel; other control characters have no business here.
    if (clientPath.includes('\0') || CONTROL_CHARS.test(clientPath)) {
      throw new SandboxRefusal('invalid_path', `Refused ${quote(clientPath)}: the path contains control characters.`);
    }
    if (URL_SCHEME.test(clientPath)) {
      throw new SandboxRefusal('invalid_path', `Refused ${quote(clientPath)}: give a workspace path, not a URL.`);
    }
    if (clientPath === '~' || clientPath.startsWith('~/')) {
      throw new SandboxRefusal(
        'outside_workspace',
        `Refused ${quote(clientPath)}: home-directory paths are outside the workspace.`,
      );
    }
    if (DRIVE_LETTER.test(clientPath) || clientPath.includes('\\')) {
      throw new SandboxRefusal(
        'invalid_path',
        `Refused ${quote(clientPath)}: use forward slashes and workspace paths, not Windows paths.`,
      );
    }
    const relative = path.isAbsolute(clientPath) ? this.relativeFromAbsolute(clientPath) : clientPath;
    const normalized = path.posix.normalize(relative);
    if (normalized === '..' || normalized.startsWith('../') || path.posix.isAbsolute(normalized)) {
      throw this.outside(clientPath);
    }
    const cleaned = normalized === '.' ? '' : normalized.replace(/\/+$/, '').replace(/^\.\//, '');
    this.assertAllowed(cleaned, clientPath);
    return cleaned;
  }

  /** Refuses a workspace-relative path that a deny pattern or Bastion's own temp names cover. */
  assertAllowed(relative: string, clientPath: string): void {
    if (this.isHidden(relative)) {
      throw new SandboxRefusal('denied', `Refused ${quote(clientPath)}: the path is protected by the workspace policy.`);
    }
  }

  /** True when the path, or any directory above it, is denied. Listings hide such entries. */
  isHidden(relative: string): boolean {
    if (relative === '') return false;
    let prefix = '';
    for (const part of relative.split('/')) {
      if (part.toLowerCase().startsWith(TEMP_PREFIX)) return true;
      prefix = prefix ? `${prefix}/${part}` : part;
      if (this.denied(prefix)) return true;
    }
    return false;
  }

  /** The workspace-relative form of a real (resolved) absolute path, or null when it lies outside the root. */
  containedRelative(realAbsolute: string): string | null {
    if (realAbsolute === this.root) return '';
    const prefix = this.root.endsWith(path.sep) ? this.root : this.root + path.sep;
    // Security: the separator makes `/ws-evil` a sibling of `/ws`, not a child.
    return realAbsolute.startsWith(prefix) ? realAbsolute.slice(prefix.length) : null;
  }

  absolute(relative: string): string {
    return relative === '' ? this.root : path.join(this.root, relative);
  }

  outside(clientPath: string): SandboxRefusal {
    return new SandboxRefusal('outside_workspace', `Refused ${quote(clientPath)}: the path is outside the workspace.`);
  }

  private relativeFromAbsolute(clientPath: string): string {
    const normalized = path.resolve(clientPath);
    for (const root of this.absoluteRoots) {
      if (normalized === root) return '.';
      const prefix = root.endsWith(path.sep) ? root : root + path.sep;
      if (normalized.startsWith(prefix)) return normalized.slice(prefix.length);
    }
    throw this.outside(clientPath);
  }
}
