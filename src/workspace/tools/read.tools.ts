import { z } from 'zod';
import { dataResult, defineTool, type ContentBlock } from '../../tools/tool.js';
import { readAll, readHead, readTail, tooLarge } from '../file-reader.js';
import { mediaType, workspaceUri } from '../media-types.js';
import type { Sandbox } from '../sandbox.js';
import { SandboxRefusal } from '../sandbox.errors.js';

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;
const pathArg = z.string().describe('Path of the file, relative to the workspace root (absolute paths inside it are accepted).');
const textOutput = z.object({ content: z.string() });

/** Bytes a text read may return: its text and structured copies together stay within the response cap. */
function textBudget(sandbox: Sandbox): number {
  return Math.min(sandbox.limits.maxFileBytes, Math.floor(sandbox.limits.maxResponseBytes / 2) - 1024);
}

async function readText(sandbox: Sandbox, clientPath: string, head?: number, tail?: number): Promise<string> {
  const file = await sandbox.openFile(clientPath);
  try {
    const budget = textBudget(sandbox);
    if (head !== undefined) return (await readHead(file.handle, head, budget)).text;
    if (tail !== undefined) return (await readTail(file.handle, file.stats.size, tail, budget)).text;
    if (file.stats.size > budget) throw tooLarge(clientPath, file.stats.size, budget);
    return (await readAll(file, budget, clientPath)).toString('utf8');
  } finally {
    file.handle.close();
  }
}

const lineCount = z.number().int().positive().optional();

export const readTextFile = defineTool({
  name: 'read_text_file',
  title: 'Read Text File',
  description:
    'Read the complete contents of a file from the workspace as text. Use the head parameter to read only ' +
    'the first N lines, or tail for the last N lines. Large files are refused unless head or tail is given.',
  scopes: ['files:read'],
  annotations: READ_ONLY,
  input: z.object({
    path: pathArg,
    tail: lineCount.describe('If provided, returns only the last N lines of the file'),
    head: lineCount.describe('If provided, returns only the first N lines of the file'),
  }),
  output: textOutput,
  async handler({ path, head, tail }, { sandbox }) {
    if (head !== undefined && tail !== undefined) {
      throw new SandboxRefusal('invalid_path', 'Give head or tail, not both.');
    }
    const content = await readText(sandbox, path, head, tail);
    return dataResult(content, { content });
  },
});

export const readMediaFile = defineTool({
  name: 'read_media_file',
  title: 'Read Media File',
  description:
    'Read an image, audio or other binary file and return it base64-encoded with its MIME type. Images and ' +
    'audio come back as image/audio content; other files as an embedded resource.',
  scopes: ['files:read'],
  annotations: READ_ONLY,
  input: z.object({ path: pathArg }),
  output: z.object({
    content: z.array(
      z.union([
        z.object({ type: z.enum(['image', 'audio']), data: z.string(), mimeType: z.string() }),
        z.object({
          type: z.literal('resource'),
          resource: z.object({ uri: z.string(), mimeType: z.string().optional(), blob: z.string() }),
        }),
      ]),
    ),
  }),
  async handler({ path }, { sandbox }) {
    const file = await sandbox.openFile(path);
    let data: string;
    try {
      // base64 grows by a third, and the structured copy doubles it again
      const budget = Math.min(sandbox.limits.maxFileBytes, Math.floor((sandbox.limits.maxResponseBytes - 2048) * 3 / 8));
      data = (await readAll(file, budget, path)).toString('base64');
    } finally {
      file.handle.close();
    }
    const mimeType = mediaType(file.rel);
    const block: ContentBlock =
      mimeType.startsWith('image/') || mimeType.startsWith('audio/')
        ? { type: mimeType.startsWith('image/') ? 'image' : 'audio', data, mimeType }
        : { type: 'resource', resource: { uri: workspaceUri(file.rel), mimeType, blob: data } };
    return { content: [block], structuredContent: { content: [block] } };
  },
});

export const readMultipleFiles = defineTool({
  name: 'read_multiple_files',
  title: 'Read Multiple Files',
  description:
    'Read several files at once. Each file comes back with its path; a file that cannot be read reports its ' +
    'error without stopping the others.',
  scopes: ['files:read'],
  annotations: READ_ONLY,
  input: z.object({
    paths: z.array(z.string()).min(1).describe('Paths of the files to read, relative to the workspace root.'),
  }),
  output: z.object({
    content: z.string(),
    files: z.array(z.object({ path: z.string(), content: z.string().optional(), error: z.string().optional() })),
  }),
  async handler({ paths }, { sandbox }) {
    if (paths.length > sandbox.limits.maxFilesPerRead) {
      throw new SandboxRefusal('limit_exceeded', `Refused: at most ${sandbox.limits.maxFilesPerRead} files per call.`);
    }
    const files = await Promise.all(
      paths.map(async (path) => {
        try {
          return { path, content: await readText(sandbox, path) };
        } catch (error) {
          if (!(error instanceof SandboxRefusal)) throw error;
          return { path, error: error.message };
        }
      }),
    );
    const text = files
      .map((f) => (f.error === undefined ? `${f.path}:\n${f.content}\n` : `${f.path}: Error - ${f.error}`))
      .join('\n---\n');
    return dataResult(text, { content: text, files });
  },
});

export const getFileInfo = defineTool({
  name: 'get_file_info',
  title: 'Get File Info',
  description:
    'Retrieve metadata about a file or directory: size, creation, modification and access times, type and ' +
    'permissions, without reading its content.',
  scopes: ['files:read'],
  annotations: READ_ONLY,
  input: z.object({ path: pathArg }),
  output: z.object({
    content: z.string(),
    size: z.number(),
    created: z.string(),
    modified: z.string(),
    accessed: z.string(),
    isDirectory: z.boolean(),
    isFile: z.boolean(),
    permissions: z.string(),
  }),
  async handler({ path }, { sandbox }) {
    const { stats } = await sandbox.inspect(path);
    const info = {
      size: stats.size,
      created: stats.birthtime.toISOString(),
      modified: stats.mtime.toISOString(),
      accessed: stats.atime.toISOString(),
      isDirectory: stats.isDirectory(),
      isFile: stats.isFile(),
      permissions: (stats.mode & 0o777).toString(8).padStart(3, '0'),
    };
    const text = Object.entries(info)
      .map(([key, value]) => `${key}: ${value}`)
      .join('\n');
    return dataResult(text, { content: text, ...info });
  },
});

export const listAllowedDirectories = defineTool({
  name: 'list_allowed_directories',
  title: 'List Allowed Directories',
  description:
    'List the directories this server may access, relative to the workspace root ("." is the root). ' +
    'Everything below them is accessible too.',
  scopes: ['files:read'],
  annotations: READ_ONLY,
  input: z.object({}),
  output: z.object({ content: z.string(), directories: z.array(z.string()) }),
  async handler(_args, { sandbox }) {
    const directories = sandbox.allowedDirectories();
    const text = `Allowed directories:\n${directories.join('\n')}`;
    return dataResult(text, { content: text, directories });
  },
});
