import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';

const CHUNK = 1024 * 1024;
const NEWLINE = 0x0a;

export interface FileDigest {
  bytes: number;
  sha256: string;
}

/** Size and SHA-256 of a regular file, read without following a symlink. */
export async function digestFile(file: string): Promise<FileDigest> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of chunks(handle, Infinity)) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    return { bytes, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

export interface CopyOptions {
  /**
   * Copy only whole lines: a file another process appends to may end mid-line; the partial line is left
   * out. Only the bytes the file held when the copy started are read.
   */
  completeLines?: boolean;
  /**
   * Read through a symlink. For the live state only, whose paths the operator configured (a Kubernetes
   * Secret volume, say, serves its files through links); never for a file read from a backup.
   */
  followLinks?: boolean;
}

/**
 * Copies a regular file into a new file (mode 0600, refused if `dest` exists, so never through a planted
 * symlink), fsyncs it, and returns what was written.
 */
export async function copyNew(source: string, dest: string, options: CopyOptions = {}): Promise<FileDigest> {
  const input = await open(source, constants.O_RDONLY | (options.followLinks ? 0 : constants.O_NOFOLLOW));
  try {
    const output = await open(dest, 'wx', 0o600);
    try {
      const hash = createHash('sha256');
      const limit = (await input.stat()).size;
      let written = 0;
      let pending: Buffer[] = [];
      for await (const chunk of chunks(input, limit)) {
        if (!options.completeLines) {
          await writeAll(output, chunk);
          hash.update(chunk);
          written += chunk.length;
          continue;
        }
        // Hold back everything after the last newline until a later chunk completes the line.
        const end = chunk.lastIndexOf(NEWLINE);
        if (end === -1) {
          pending.push(chunk);
          continue;
        }
        const whole = Buffer.concat([...pending, chunk.subarray(0, end + 1)]);
        await writeAll(output, whole);
        hash.update(whole);
        written += whole.length;
        pending = [chunk.subarray(end + 1)];
      }
      await output.sync();
      return { bytes: written, sha256: hash.digest('hex') };
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

/** Writes a small file that must not exist yet (mode 0600) and fsyncs it. */
export async function writeNew(file: string, data: string): Promise<void> {
  const handle = await open(file, 'wx', 0o600);
  try {
    await writeAll(handle, Buffer.from(data));
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a directory's entries (creations, renames) durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** What is at a path without following a link: a file, a directory, something else, or nothing. */
export async function kindOf(file: string): Promise<'file' | 'directory' | 'other' | 'missing'> {
  try {
    const stats = await lstat(file);
    return stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
}

async function* chunks(handle: FileHandle, limit: number): AsyncGenerator<Buffer> {
  let position = 0;
  while (position < limit) {
    const buffer = Buffer.alloc(Math.min(CHUNK, limit - position));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}
