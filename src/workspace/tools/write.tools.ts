import { z } from 'zod';
import { dataResult, defineTool } from '../../tools/tool.js';
import { applyEdits } from '../text-edit.js';
import { makeDirectories, moveEntry, readForUpdate, removeFile, replaceFile } from '../workspace-writer.js';

const textOutput = z.object({ content: z.string() });
const pathArg = z.string().describe('Path relative to the workspace root.');

function done(text: string) {
  return dataResult(text, { content: text });
}

export const writeFile = defineTool({
  name: 'write_file',
  title: 'Write File',
  description:
    'Create a new file or completely overwrite an existing file with new content. The write is atomic: ' +
    'readers see the old content or the new, never a mix. The parent directory must exist.',
  scopes: ['files:write'],
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  input: z.object({ path: pathArg, content: z.string() }),
  output: textOutput,
  async handler({ path, content }, { sandbox }) {
    await replaceFile(sandbox, path, content);
    return done(`Successfully wrote to ${path}`);
  },
});

export const editFile = defineTool({
  name: 'edit_file',
  title: 'Edit File',
  description:
    'Make text edits to a file. Each edit replaces oldText with newText; matching tolerates CRLF/LF and ' +
    'indentation differences. Returns a git-style diff. With dryRun the diff is returned and nothing is written.',
  // The diff shows the file's lines, so editing reads as well as writes.
  scopes: ['files:read', 'files:write'],
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  input: z.object({
    path: pathArg,
    edits: z.array(
      z.object({
        oldText: z.string().describe('Text to search for - must match exactly'),
        newText: z.string().describe('Text to replace with'),
      }),
    ),
    dryRun: z.boolean().default(false).describe('Preview changes using git-style diff format'),
  }),
  output: z.object({ content: z.string(), applied: z.boolean() }),
  async handler({ path, edits, dryRun }, { sandbox }) {
    const original = await readForUpdate(sandbox, path);
    const { content, diff } = applyEdits(original, edits, path);
    if (!dryRun) await replaceFile(sandbox, path, content);
    return dataResult(diff, { content: diff, applied: !dryRun });
  },
});

export const createDirectory = defineTool({
  name: 'create_directory',
  title: 'Create Directory',
  description:
    'Create a directory, with any missing parents. Succeeds silently when the directory already exists.',
  scopes: ['files:write'],
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  input: z.object({ path: pathArg }),
  output: textOutput,
  async handler({ path }, { sandbox }) {
    await makeDirectories(sandbox, path);
    return done(`Successfully created directory ${path}`);
  },
});

export const moveFile = defineTool({
  name: 'move_file',
  title: 'Move File',
  description:
    'Move or rename a file or directory. Fails when the destination already exists. Both paths are in the workspace.',
  scopes: ['files:write'],
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  input: z.object({ source: z.string(), destination: z.string() }),
  output: textOutput,
  async handler({ source, destination }, { sandbox }) {
    await moveEntry(sandbox, source, destination);
    return done(`Successfully moved ${source} to ${destination}`);
  },
});

export const deleteFile = defineTool({
  name: 'delete_file',
  title: 'Delete File',
  description: 'Delete a file (a symbolic link is removed, not what it points to). Directories are not deleted.',
  scopes: ['files:write'],
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  input: z.object({ path: pathArg }),
  output: textOutput,
  async handler({ path }, { sandbox }) {
    await removeFile(sandbox, path);
    return done(`Successfully deleted ${path}`);
  },
});
