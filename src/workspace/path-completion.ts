import path from 'node:path';
import type { Sandbox } from './sandbox.js';
import { SandboxRefusal } from './sandbox.errors.js';

const MAX_COMPLETIONS = 100;

/** Workspace paths that start with what the user has typed so far, for argument completion. */
export async function completePath(sandbox: Sandbox, typed: string): Promise<{ values: string[]; hasMore: boolean }> {
  const slash = typed.lastIndexOf('/');
  const dirPart = slash === -1 ? '' : typed.slice(0, slash);
  const namePart = slash === -1 ? typed : typed.slice(slash + 1);
  let dir;
  try {
    dir = await sandbox.openDir(dirPart === '' ? '.' : dirPart);
  } catch (error) {
    if (error instanceof SandboxRefusal) return { values: [], hasMore: false };
    throw error;
  }
  try {
    const names = (await dir.readdir())
      .filter((d) => d.name.startsWith(namePart) && sandbox.visible(dir.childRel(d.name)))
      .map((d) => path.posix.join(dirPart, d.name) + (d.isDirectory() ? '/' : ''))
      .sort();
    return { values: names.slice(0, MAX_COMPLETIONS), hasMore: names.length > MAX_COMPLETIONS };
  } finally {
    await dir.close();
  }
}
