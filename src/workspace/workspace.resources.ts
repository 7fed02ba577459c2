import { ProtocolError, ProtocolErrorCode, ResourceNotFoundError } from '@modelcontextprotocol/server';
import type { ServingContext } from '../mcp/mcp-server.factory.js';
import { readAll } from './file-reader.js';
import { mediaType, pathFromWorkspaceUri, workspaceUri } from './media-types.js';
import { SandboxRefusal } from './sandbox.errors.js';
import { walk } from './workspace-walk.js';

const PAGE_SIZE = 100;
export const FILE_TEMPLATE = 'workspace:///{+path}';

interface ResourceEntry {
  uri: string;
  name: string;
  title?: string;
  mimeType: string;
  size?: number;
}

/**
 * Workspace files as MCP resources: listed page by page, addressable through a URI template, read through
 * the same sandbox as the tools. URIs are workspace:///<path>, so no host path is revealed.
 */
export class WorkspaceResources {
  async list(serving: ServingContext, cursor: string | undefined, signal: AbortSignal): Promise<{ resources: ResourceEntry[]; nextCursor?: string }> {
    const offset = decodeCursor(cursor);
    const { sandbox } = serving;
    const page: ResourceEntry[] = [];
    let seen = 0;
    let more = false;
    const dir = await sandbox.openDir('.');
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
          signal,
        },
      );
    } finally {
      await dir.close();
    }
    return more ? { resources: page, nextCursor: encodeCursor(offset + page.length) } : { resources: page };
  }

  templates() {
    return {
      resourceTemplates: [
        {
          uriTemplate: FILE_TEMPLATE,
          name: 'workspace-file',
          title: 'Workspace file',
          description: 'Any file in the workspace, by its path relative to the workspace root.',
        },
      ],
    };
  }

  async read(serving: ServingContext, uri: string) {
    const rel = pathFromWorkspaceUri(uri);
    // Not a workspace URI: no such resource here (SEP-2164 asks for not-found with the URI in error data).
    if (rel === null) throw new ResourceNotFoundError(uri, 'Resource not found: workspace resources have the form workspace:///<path>.');
    const { sandbox } = serving;
    let bytes: Buffer;
    let realRel: string;
    try {
      const file = await sandbox.openFile(rel === '' ? '.' : rel);
      try {
        bytes = await readAll(file, Math.floor(sandbox.limits.maxResponseBytes / 2), rel);
        realRel = file.rel;
      } finally {
        file.handle.close();
      }
    } catch (error) {
      if (error instanceof SandboxRefusal) {
        if (error.code === 'not_found') throw new ResourceNotFoundError(uri, `Resource not found: ${uri}`);
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, error.message);
      }
      throw error;
    }
    const mimeType = mediaType(realRel);
    const text = bytes.includes(0) ? null : bytes.toString('utf8');
    const contents = text !== null && !text.includes('\uFFFD') ? { uri, mimeType, text } : { uri, mimeType, blob: bytes.toString('base64') };
    return { contents: [contents] };
  }
}

function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  const match = /^o:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid cursor.');
  return Number(match[1]);
}
