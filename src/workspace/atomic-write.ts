import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { DirHandle } from './dir-handle.js';
import { O } from './fd-locator.js';
import { TEMP_PREFIX } from './path-policy.js';

/**
 * Replaces `name` in `dir` with `data` so that readers see the old content or the new, never a mix, and a
 * crash leaves one of the two: a temp file in the same directory (created exclusively, never through a
 * link), fsync, rename over the name, fsync the directory. Every name is reached through the directory's
 * descriptor. (write-file-atomic resolves the target through symlinks, which is what this must not do.)
 */
export async function writeAtomic(dir: DirHandle, name: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const temp = `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`;
  const handle = await fs.open(dir.child(temp), O.createExclusive, 0o600);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode & 0o777);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.unlink(dir.child(temp)).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await fs.rename(dir.child(temp), dir.child(name));
  } catch (error) {
    await fs.unlink(dir.child(temp)).catch(() => undefined);
    throw error;
  }
  await dir.sync();
}
