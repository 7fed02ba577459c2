import type { Stats } from 'node:fs';
import { promises as fs } from 'node:fs';
import { writeAtomic } from './atomic-write.js';
import type { DirHandle } from './dir-handle.js';
import { readAll, tooLarge } from './file-reader.js';
import type { Sandbox } from './sandbox.js';
import { quote, SandboxRefusal } from './sandbox.errors.js';

/**
 * Every change to the workspace. Names are changed through their verified parent directory's descriptor
 * and never through a symlink at the final component; content is replaced atomically.
 */

/** Replaces (or creates) a file's content. The parent directory must exist. */
export async function replaceFile(sandbox: Sandbox, clientPath: string, data: string | Buffer): Promise<{ rel: string; created: boolean }> {
  sandbox.assertWritable(clientPath);
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (size > sandbox.limits.maxWriteBytes) throw tooLarge(clientPath, size, sandbox.limits.maxWriteBytes);
  return withParent(sandbox, clientPath, async (dir, name, rel) => {
    const existing = await dir.lstat(name);
    if (existing) assertReplaceable(existing, clientPath);
    await writeAtomic(dir, name, data, existing ? existing.mode : 0o644);
    return { rel, created: !existing };
  });
}

/** Reads a file that is about to be rewritten, refusing what a write would refuse. */
export async function readForUpdate(sandbox: Sandbox, clientPath: string): Promise<string> {
  sandbox.assertWritable(clientPath);
  return withParent(sandbox, clientPath, async (dir, name) => {
    const existing = await dir.lstat(name);
    if (!existing) throw new SandboxRefusal('not_found', `${quote(clientPath)} does not exist.`);
    assertReplaceable(existing, clientPath);
    if (existing.size > sandbox.limits.maxWriteBytes) throw tooLarge(clientPath, existing.size, sandbox.limits.maxWriteBytes);
    // Security: a read like any other (hard links included); only the write that follows replaces the name.
    const file = sandbox.openFileIn(dir, name, clientPath);
    try {
      const bytes = await readAll(file, sandbox.limits.maxWriteBytes, clientPath);
      return bytes.toString('utf8');
    } finally {
      file.handle.close();
    }
  });
}

/** Creates a directory and any missing parents; succeeds when it already exists. */
export async function makeDirectories(sandbox: Sandbox, clientPath: string): Promise<void> {
  sandbox.assertWritable(clientPath);
  // Under narrowed roots the walk starts at the root that holds the path: the workspace root is out of reach.
  const top = await sandbox.openTop(sandbox.relative(clientPath), clientPath);
  let dir = top.dir;
  try {
    for (const part of top.below) {
      sandbox.policy.assertAllowed(dir.childRel(part), clientPath);
      const existing = await dir.lstat(part);
      if (!existing) {
        await fs.mkdir(dir.child(part), 0o755).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error;
        });
      } else if (!existing.isDirectory()) {
        throw new SandboxRefusal(
          existing.isSymbolicLink() ? 'link_refused' : 'not_a_directory',
          `Refused ${quote(clientPath)}: ${quote(dir.childRel(part))} exists and is not a directory.`,
        );
      }
      const next = await dir.openDir(part);
      await dir.close();
      dir = next;
    }
  } catch (error) {
    throw sandbox.refusal(error, clientPath);
  } finally {
    await dir.close();
  }
}

/** Moves or renames a file or directory; refuses when the destination exists. */
export async function moveEntry(sandbox: Sandbox, source: string, destination: string): Promise<void> {
  sandbox.assertWritable(source);
  await withParent(sandbox, source, async (from, fromName, fromRel) =>
    withParent(sandbox, destination, async (to, toName, toRel) => {
      if (!(await from.lstat(fromName))) throw new SandboxRefusal('not_found', `${quote(source)} does not exist.`);
      if (await to.lstat(toName)) {
        throw new SandboxRefusal('already_exists', `Refused to move onto ${quote(destination)}: it already exists.`);
      }
      if (toRel === fromRel || toRel.startsWith(`${fromRel}/`)) {
        throw new SandboxRefusal('invalid_path', `Refused to move ${quote(source)} into itself.`);
      }
      await fs.rename(from.child(fromName), to.child(toName));
    }),
  );
}

/** Deletes a file (or a symlink, never what it points to). Directories are not deleted. */
export async function removeFile(sandbox: Sandbox, clientPath: string): Promise<void> {
  sandbox.assertWritable(clientPath);
  await withParent(sandbox, clientPath, async (dir, name) => {
    const existing = await dir.lstat(name);
    if (!existing) throw new SandboxRefusal('not_found', `${quote(clientPath)} does not exist.`);
    if (existing.isDirectory()) {
      throw new SandboxRefusal('is_a_directory', `Refused ${quote(clientPath)}: it is a directory; delete_file removes files only.`);
    }
    await fs.unlink(dir.child(name));
    await dir.sync();
  });
}

async function withParent<T>(
  sandbox: Sandbox,
  clientPath: string,
  action: (dir: DirHandle, name: string, rel: string) => Promise<T>,
): Promise<T> {
  const { dir, name, rel } = await sandbox.openParent(clientPath);
  try {
    return await action(dir, name, rel);
  } catch (error) {
    throw sandbox.refusal(error, clientPath);
  } finally {
    await dir.close();
  }
}

function assertReplaceable(stats: Stats, clientPath: string): void {
  const q = quote(clientPath);
  if (stats.isSymbolicLink()) {
    throw new SandboxRefusal('link_refused', `Refused ${q}: it is a symbolic link; write to the file it points to instead.`);
  }
  if (stats.isDirectory()) throw new SandboxRefusal('is_a_directory', `Refused ${q}: it is a directory.`);
  if (!stats.isFile()) throw new SandboxRefusal('special_file', `Refused ${q}: it is a device, FIFO or socket.`);
  // Security: a file with other hard links is replaced, not refused: writeAtomic renames a new inode over
  // this name, so another link (inside the workspace or not) keeps the old content and is never written.
}
