import type { Dirent, Stats } from 'node:fs';
import { openSync, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { fdLocator, O, type FdLocator } from './fd-locator.js';
import { OpenFile } from './open-file.js';

/**
 * An open, verified workspace directory. Names below it are reached through the descriptor, so what they
 * refer to cannot be changed by swapping a directory on the way for a symlink.
 */
export class DirHandle {
  constructor(
    private readonly handle: FileHandle,
    /** The directory's real path, relative to the workspace root ('' for the root). */
    readonly rel: string,
    /** The directory's real absolute path. */
    readonly real: string,
    private readonly locator: FdLocator = fdLocator,
  ) {}

  /** A path string for `name` inside this directory, anchored at the descriptor. */
  child(name: string): string {
    return this.locator.child(this.handle.fd, this.real, name);
  }

  childRel(name: string): string {
    return this.rel === '' ? name : `${this.rel}/${name}`;
  }

  readdir(): Promise<Dirent[]> {
    return fs.readdir(this.child(''), { withFileTypes: true });
  }

  /** lstat of a name inside this directory (never follows a final symlink); null when it does not exist. */
  async lstat(name: string): Promise<Stats | null> {
    try {
      return await fs.lstat(this.child(name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  /** Opens a subdirectory without following a symlink at its name. */
  async openDir(name: string): Promise<DirHandle> {
    const handle = await fs.open(this.child(name), O.readDir);
    return new DirHandle(handle, this.childRel(name), `${this.real}/${name}`, this.locator);
  }

  /**
   * Opens a file for reading without following a symlink at its name; never blocks on a FIFO. Checks nothing
   * about what was opened: content is read through Sandbox.openFileIn, which applies the read rules.
   */
  openFile(name: string): OpenFile {
    return new OpenFile(openSync(this.child(name), O.readFile));
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
