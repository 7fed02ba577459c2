import { constants, fstatSync, lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';

/**
 * Finds where an open descriptor really is, so the sandbox checks what was opened rather than the name
 * that was checked. On Linux /proc/self/fd gives the kernel's answer, and names below an open directory are
 * reached through it, so a directory swapped for a symlink after the check cannot redirect the operation.
 * Elsewhere the descriptor's device and inode are compared with a fresh resolution of the expected path
 * (weaker: a swap undone before the check goes unseen, and names below a directory are used by path).
 */
export interface FdLocator {
  readonly anchored: boolean;
  /**
   * The real absolute path of an open descriptor, or null when it cannot be told. Synchronous: one cheap
   * system call on a freshly opened descriptor, less than a round trip through libuv's thread pool.
   */
  locate(fd: number, expected: string): string | null;
  /** A path naming `name` inside the directory open as `dirFd`, resolved from the descriptor itself. */
  child(dirFd: number, dirReal: string, name: string): string;
}

const procLocator: FdLocator = {
  anchored: true,
  locate(fd) {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return null;
    }
  },
  child(dirFd, _dirReal, name) {
    return name === '' ? `/proc/self/fd/${dirFd}` : `/proc/self/fd/${dirFd}/${name}`;
  },
};

/** The locator for systems without /proc/self/fd. Exported so its check can be tested on any system. */
export const inodeLocator: FdLocator = {
  anchored: false,
  locate(fd, expected) {
    try {
      const opened = fstatSync(fd);
      // Security: resolve the expected path again rather than stat it. A stat follows the same swapped
      // symlink the open followed and so always agrees; a fresh realpath shows the detour as another path.
      const fresh = realpathSync.native(expected);
      if (fresh !== expected) return null;
      const named = lstatSync(fresh);
      return opened.dev === named.dev && opened.ino === named.ino ? expected : null;
    } catch {
      return null;
    }
  },
  child(_dirFd, dirReal, name) {
    return name === '' ? dirReal : path.join(dirReal, name);
  },
};

function procWorks(): boolean {
  try {
    readdirSync('/proc/self/fd');
    return true;
  } catch {
    return false;
  }
}

export const fdLocator: FdLocator = process.platform === 'linux' && procWorks() ? procLocator : inodeLocator;

export const O = {
  readFile: constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY,
  readDir: constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
  createExclusive: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
} as const;
