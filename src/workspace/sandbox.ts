import type { Stats } from 'node:fs';
import { lstatSync, openSync, promises as fs, realpathSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { WorkspaceLimits } from '../config/config.schema.js';
import { DirHandle } from './dir-handle.js';
import { fdLocator, O, type FdLocator } from './fd-locator.js';
import { OpenFile } from './open-file.js';
import { PathPolicy } from './path-policy.js';
import { quote, SandboxRefusal } from './sandbox.errors.js';

export interface SandboxOptions {
  root: string;
  denyPatterns: readonly string[];
  limits: WorkspaceLimits;
  readOnly: boolean;
  /** Create the root directory when it does not exist. */
  createRoot?: boolean;
  /** Read regular files that have more than one hard link (refused by default; see workspace.allowHardLinks). */
  allowHardLinks?: boolean;
}

export interface OpenedFile {
  handle: OpenFile;
  stats: Stats;
  /** Real path of the file relative to the workspace root. */
  rel: string;
}

export interface ParentRef {
  dir: DirHandle;
  name: string;
  /** Workspace-relative path of the target, under its real parent. */
  rel: string;
}

/**
 * The workspace, as every tool sees it. Layer one (PathPolicy) rules on the name a client sent; layer two
 * resolves symlinks and requires the real location to stay inside the root; layer three opens without
 * following a final link and checks, on the open descriptor, that what was opened is what was checked.
 *
 * Resolving and opening a file are synchronous system calls: on a local filesystem each takes microseconds,
 * several times less than a round trip through libuv's thread pool, and a file read is the hot path.
 */
export class Sandbox {
  private constructor(
    readonly policy: PathPolicy,
    readonly limits: WorkspaceLimits,
    readonly readOnly: boolean,
    /** When set, only these workspace-relative subtrees are reachable (client roots narrow, never widen). */
    readonly within: readonly string[] | null,
    private readonly locator: FdLocator,
    readonly allowHardLinks: boolean,
  ) {}

  static async create(options: SandboxOptions, locator: FdLocator = fdLocator): Promise<Sandbox> {
    const configured = path.resolve(options.root);
    if (options.createRoot) await fs.mkdir(configured, { recursive: true });
    const root = await fs.realpath(configured);
    const stats = await fs.stat(root);
    if (!stats.isDirectory()) throw new Error('The workspace root is not a directory.');
    const policy = new PathPolicy(root, options.denyPatterns, configured);
    return new Sandbox(policy, options.limits, options.readOnly, null, locator, options.allowHardLinks ?? false);
  }

  /** A sandbox that reaches only the given workspace-relative subtrees of this one. */
  narrow(subtrees: readonly string[]): Sandbox {
    const inside = subtrees.filter((rel) => this.reachable(rel));
    return new Sandbox(this.policy, this.limits, this.readOnly, inside, this.locator, this.allowHardLinks);
  }

  /** The directories a client may use, relative to the workspace root ('.' for the root itself). */
  allowedDirectories(): string[] {
    return this.within ? this.within.map((rel) => rel || '.') : ['.'];
  }

  /** Layer one: the normalized workspace-relative form of a client path. */
  relative(clientPath: string): string {
    const rel = this.policy.toRelative(clientPath);
    if (!this.reachable(rel)) throw this.policy.outside(clientPath);
    return rel;
  }

  /** Layer two: the real location of an existing path, after every symlink, inside the workspace. */
  async resolveExisting(clientPath: string): Promise<{ rel: string; real: string }> {
    return this.resolve(clientPath);
  }

  /** Opens an existing regular file for reading. Every read of file content goes through here or openFileIn. */
  async openFile(clientPath: string): Promise<OpenedFile> {
    const { rel, real } = this.resolve(clientPath);
    return this.admitFile(this.openVerified(real, clientPath), rel, clientPath);
  }

  /**
   * Opens `name` below a directory the sandbox opened (a walk's directory, a verified parent) for reading,
   * under the same rules as openFile. The caller has already checked the name against the policy.
   */
  openFileIn(dir: DirHandle, name: string, clientPath: string): OpenedFile {
    let handle: OpenFile;
    try {
      handle = dir.openFile(name);
    } catch (error) {
      throw this.openRefusal(error, O.readFile, dir.child(name), clientPath);
    }
    // Security: without /proc the name was opened by path below the directory's real path, so a directory on
    // the way may have been swapped since it was opened: check what was opened, as openFile does.
    const expected = path.join(dir.real, name);
    if (!this.locator.anchored && this.locator.locate(handle.fd, expected) !== expected) {
      handle.close();
      throw this.raced(clientPath);
    }
    return this.admitFile(handle, dir.childRel(name), clientPath);
  }

  /** Metadata of an existing file or directory (after symlinks), read from the opened descriptor. */
  async inspect(clientPath: string): Promise<{ rel: string; real: string; stats: Stats }> {
    const { rel, real } = this.resolve(clientPath);
    const handle = this.openVerified(real, clientPath);
    try {
      return { rel, real, stats: handle.stat() };
    } finally {
      handle.close();
    }
  }

  /** Opens an existing directory; names below it are reached through the descriptor. */
  async openDir(clientPath: string): Promise<DirHandle> {
    const { rel, real } = this.resolve(clientPath);
    return this.openDirAt(rel, real, clientPath);
  }

  /**
   * Opens the reachable directory a workspace-relative path lies under (the narrowed root that holds it, or
   * the workspace root) and returns the path's names below it, for walks that create what is missing.
   */
  async openTop(rel: string, clientPath: string): Promise<{ dir: DirHandle; below: string[] }> {
    // Security: a path under no narrowed root starts from '', which checkReal refuses as outside them.
    const top = this.within?.find((root) => covers(root, rel)) ?? '';
    const { rel: realTop, real } = this.resolveRel(top, clientPath);
    const dir = await this.openDirAt(realTop, real, clientPath);
    return { dir, below: rel.slice(top.length).split('/').filter(Boolean) };
  }

  /** The verified parent directory of a path and the final name, for operations on the name itself. */
  async openParent(clientPath: string): Promise<ParentRef> {
    const rel = this.relative(clientPath);
    if (rel === '') {
      throw new SandboxRefusal('invalid_path', `Refused ${quote(clientPath)}: the workspace root itself cannot be changed.`);
    }
    const parentRel = path.posix.dirname(rel);
    let real: string;
    try {
      real = await fs.realpath(this.policy.absolute(parentRel === '.' ? '' : parentRel));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new SandboxRefusal('not_found', `Refused ${quote(clientPath)}: its parent directory does not exist.`);
      }
      throw this.refusal(error, clientPath);
    }
    const dir = await this.openDirAt(this.checkReal(real, clientPath), real, clientPath);
    const name = path.posix.basename(rel);
    const target = dir.childRel(name);
    try {
      this.policy.assertAllowed(target, clientPath);
      if (!this.reachable(target)) throw this.policy.outside(clientPath);
    } catch (error) {
      await dir.close();
      throw error;
    }
    return { dir, name, rel: target };
  }

  assertWritable(clientPath: string): void {
    if (this.readOnly) {
      throw new SandboxRefusal('read_only', `Refused ${quote(clientPath)}: the workspace is read-only.`);
    }
  }

  /** True when a real workspace-relative path may be shown (not denied, inside the narrowed subtrees). */
  visible(rel: string): boolean {
    return !this.policy.isHidden(rel) && this.reachable(rel);
  }

  /** Maps a filesystem error to a refusal that quotes only the client's path. */
  refusal(error: unknown, clientPath: string): SandboxRefusal {
    if (error instanceof SandboxRefusal) return error;
    const code = (error as NodeJS.ErrnoException).code;
    const q = quote(clientPath);
    switch (code) {
      case 'ENOENT':
        return new SandboxRefusal('not_found', `${q} does not exist.`);
      case 'ENOTDIR':
        return new SandboxRefusal('not_a_directory', `Refused ${q}: a part of the path is not a directory.`);
      case 'ELOOP':
        return new SandboxRefusal('link_refused', `Refused ${q}: it is a symbolic link, or a loop of them.`);
      case 'EISDIR':
        return new SandboxRefusal('is_a_directory', `Refused ${q}: it is a directory.`);
      case 'EEXIST':
      case 'ENOTEMPTY':
        return new SandboxRefusal('already_exists', `Refused ${q}: it already exists.`);
      case 'ENXIO':
      case 'EOPNOTSUPP':
        return this.special(clientPath);
      case 'EACCES':
      case 'EPERM':
        return new SandboxRefusal('io_error', `Refused ${q}: permission denied.`);
      case 'ENAMETOOLONG':
        return new SandboxRefusal('invalid_path', `Refused ${q}: the name is too long.`);
      case 'ENOSPC':
      case 'EDQUOT':
        return new SandboxRefusal('io_error', `Could not write ${q}: no space left in the workspace.`);
      default:
        return new SandboxRefusal('io_error', `The operation on ${q} failed.`);
    }
  }

  private resolve(clientPath: string): { rel: string; real: string } {
    return this.resolveRel(this.relative(clientPath), clientPath);
  }

  private resolveRel(rel: string, clientPath: string): { rel: string; real: string } {
    let real: string;
    try {
      real = realpathSync.native(this.policy.absolute(rel));
    } catch (error) {
      throw this.refusal(error, clientPath);
    }
    return { rel: this.checkReal(real, clientPath), real };
  }

  private async openDirAt(rel: string, real: string, clientPath: string): Promise<DirHandle> {
    const handle = await this.open(real, O.readDir, clientPath);
    try {
      if (this.locator.locate(handle.fd, real) !== real) throw this.raced(clientPath);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new DirHandle(handle, rel, real, this.locator);
  }

  private async open(real: string, flags: number, clientPath: string): Promise<FileHandle> {
    try {
      return await fs.open(real, flags);
    } catch (error) {
      throw this.openRefusal(error, flags, real, clientPath);
    }
  }

  /** Opens a resolved path for reading without following a final link, and checks what was opened. */
  private openVerified(real: string, clientPath: string): OpenFile {
    let handle: OpenFile;
    try {
      handle = new OpenFile(openSync(real, O.readFile));
    } catch (error) {
      throw this.openRefusal(error, O.readFile, real, clientPath);
    }
    // Security: check what was opened, not the name that was checked.
    if (this.locator.locate(handle.fd, real) !== real) {
      handle.close();
      throw this.raced(clientPath);
    }
    return handle;
  }

  private openRefusal(error: unknown, flags: number, real: string, clientPath: string): SandboxRefusal {
    const code = (error as NodeJS.ErrnoException).code;
    // Security: a final component that became a symlink after resolution (O_NOFOLLOW) is a race, not a path.
    // Opened as a directory, such a link fails with ENOTDIR rather than ELOOP.
    if (code === 'ELOOP' || (code === 'ENOTDIR' && flags === O.readDir && isSymlink(real))) {
      return this.raced(clientPath);
    }
    if (code === 'ENOTDIR' && flags === O.readDir) {
      return new SandboxRefusal('not_a_directory', `Refused ${quote(clientPath)}: it is not a directory.`);
    }
    return this.refusal(error, clientPath);
  }

  /** The read rules, checked on the opened descriptor: a regular file, with one link unless allowed. Closes on refusal. */
  private admitFile(handle: OpenFile, rel: string, clientPath: string): OpenedFile {
    try {
      const stats = handle.stat();
      if (stats.isDirectory()) {
        throw new SandboxRefusal('is_a_directory', `Refused ${quote(clientPath)}: it is a directory, not a file.`);
      }
      if (!stats.isFile()) throw this.special(clientPath);
      // Security: another name for this inode may lie outside the workspace, and a realpath of the name
      // inside cannot tell. fstat of the descriptor counts the links of what was opened, not of a name.
      if (stats.nlink > 1 && !this.allowHardLinks) throw this.hardLinked(clientPath);
      return { handle, stats, rel };
    } catch (error) {
      handle.close();
      throw error;
    }
  }

  private checkReal(real: string, clientPath: string): string {
    const rel = this.policy.containedRelative(real);
    if (rel === null) {
      throw new SandboxRefusal(
        'link_refused',
        `Refused ${quote(clientPath)}: it leads outside the workspace through a symbolic link.`,
      );
    }
    this.policy.assertAllowed(rel, clientPath);
    if (!this.reachable(rel)) throw this.policy.outside(clientPath);
    return rel;
  }

  private reachable(rel: string): boolean {
    if (!this.within) return true;
    return this.within.some((root) => covers(root, rel));
  }

  private special(clientPath: string): SandboxRefusal {
    return new SandboxRefusal(
      'special_file',
      `Refused ${quote(clientPath)}: it is a device, FIFO or socket, not a regular file.`,
    );
  }

  private hardLinked(clientPath: string): SandboxRefusal {
    return new SandboxRefusal(
      'hard_link',
      `Refused ${quote(clientPath)}: the file has other hard links, which may lie outside the workspace. ` +
        'An operator who trusts them (a pnpm store, for example) can admit them with workspace.allowHardLinks ' +
        '(BASTION_ALLOW_HARD_LINKS=true).',
    );
  }

  private raced(clientPath: string): SandboxRefusal {
    return new SandboxRefusal(
      'link_refused',
      `Refused ${quote(clientPath)}: the path changed while it was being opened (a symbolic link appeared).`,
    );
  }
}

/** True when the workspace-relative subtree `root` ('' for the whole workspace) holds `rel`. */
function covers(root: string, rel: string): boolean {
  return root === '' || rel === root || rel.startsWith(`${root}/`);
}

function isSymlink(real: string): boolean {
  try {
    return lstatSync(real).isSymbolicLink();
  } catch {
    return false;
  }
}
