import { z } from 'zod';
import { defineOperation, type Operation, type ResourceTemplate } from '../tools/operation.js';
import type { ToolContext } from '../tools/tool.js';
import { ToolRefusal } from '../tools/tool.errors.js';
import type { FileWatcher } from './file-watcher.js';
import { readAll } from './file-reader.js';
import { mediaType, pathFromWorkspaceUri, workspaceUri } from './media-types.js';
import { SandboxRefusal } from './sandbox.errors.js';
import { walk } from './workspace-walk.js';

const PAGE_SIZE = 100;
export const FILE_TEMPLATE = 'workspace:///{+path}';

interface ResourceEntry {
  uri: string;
  name: string;
  mimeType: string;
}

interface ResourcePage {
  resources: ResourceEntry[];
  nextCursor?: string;
}

type ResourceContents = { uri: string; mimeType: string; text: string } | { uri: string; mimeType: string; blob: string };

/** Every workspace file, through the template; reading one needs files:read like read_text_file. */
export const WORKSPACE_TEMPLATES: readonly ResourceTemplate[] = [
  {
    uriTemplate: FILE_TEMPLATE,
    name: 'workspace-file',
    title: 'Workspace file',
    description: 'Any file in the workspace, by its path relative to the workspace root.',
    scopes: ['files:read'],
  },
];

const uriArgs = z.object({ uri: z.string().max(4096) });

/** The path a workspace URI names, for the audit record; the URI cut short when it names none. */
function uriTarget({ uri }: { uri: string }): string {
  const rel = pathFromWorkspaceUri(uri);
  return rel === null ? uri.slice(0, 256) : rel || '.';
}

/**
 * Workspace files as MCP resources: listed page by page, read through the same sandbox as the tools, and
 * watched for changes. URIs are workspace:///<path>, so no host path is revealed. Names and contents both
 * need files:read; a principal without it is shown no resources at all.
 */
export function resourceOperations(watcher: FileWatcher): Operation[] {
  return [
    defineOperation({
      name: 'resources/list',
      scopes: ['files:read'],
      input: z.object({ cursor: z.string().max(64).optional() }),
      target: () => '.',
      forbidden: (): ResourcePage => ({ resources: [] }),
      handler: ({ cursor }, ctx) => listFiles(ctx, cursor),
    }),
    defineOperation({
      name: 'resources/read',
      scopes: ['files:read'],
      input: uriArgs,
      target: uriTarget,
      handler: ({ uri }, ctx) => readFile(ctx, uri),
    }),
    defineOperation({
      name: 'resources/subscribe',
      scopes: ['files:read'],
      input: uriArgs,
      target: uriTarget,
      handler: async ({ uri }, ctx) => {
        const told = ctx.resourceUpdated;
        if (!told) throw new SandboxRefusal('invalid_path', 'Resource updates cannot be delivered here.');
        const stop = await watcher.watch(ctx.sandbox, uri, () => told(uri), ctx.principal.id);
        return { stop };
      },
    }),
  ] as Operation[];
}

async function listFiles(
  ctx: ToolContext,
  cursor: string | undefined,
): Promise<ResourcePage> {
  const offset = decodeCursor(cursor);
  const { sandbox } = ctx;
  const page: ResourceEntry[] = [];
  let seen = 0;
  let more = false;
  // A narrowed workspace (a stdio client's roots) is listed root by root.
  for (const start of sandbox.allowedDirectories()) {
    const dir = await sandbox.openDir(start);
    try {
      await walk(
        sandbox,
        dir,
        (entry) => {
          if (entry.type !== 'file') return;
          if (seen++ < offset) return;
          if (page.length === PAGE_SIZE) {
            more = true;
            return 'stop';
          }
          page.push({ uri: workspaceUri(entry.rel), name: entry.rel, mimeType: mediaType(entry.name) });
        },
        {
          maxEntries: sandbox.limits.maxWalkEntries,
          maxDepth: sandbox.limits.maxDepth,
          deadline: Date.now() + sandbox.limits.searchTimeMs,
          signal: ctx.signal,
        },
      );
    } finally {
      await dir.close();
    }
    if (more) break;
  }
  return more ? { resources: page, nextCursor: encodeCursor(offset + page.length) } : { resources: page };
}

async function readFile(ctx: ToolContext, uri: string): Promise<{ contents: ResourceContents[] }> {
  const rel = pathFromWorkspaceUri(uri);
  // Not a workspace URI: no such resource here.
  if (rel === null)
    throw new SandboxRefusal('not_found', 'Resource not found: workspace resources have the form workspace:///<path>.');
  const { sandbox } = ctx;
  const file = await sandbox.openFile(rel === '' ? '.' : rel);
  let bytes: Buffer;
  try {
    bytes = await readAll(file, Math.floor(sandbox.limits.maxResponseBytes / 2), rel);
  } finally {
    file.handle.close();
  }
  const mimeType = mediaType(file.rel);
  const text = bytes.includes(0) ? null : bytes.toString('utf8');
  const contents =
    text !== null && !text.includes('\uFFFD')
      ? { uri, mimeType, text }
      : { uri, mimeType, blob: bytes.toString('base64') };
  return { contents: [contents] };
}

function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  const match = /^o:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new ToolRefusal('invalid_cursor', 'Invalid cursor.');
  return Number(match[1]);
}
