import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
  description: string;
};

export const VERSION: string = pkg.version;
export const DESCRIPTION: string = pkg.description;

/** The stateless revision (per-request envelope) served beside the 2025 ones. */
export const MODERN_REVISION = '2026-07-28';

export const SERVER_INFO = {
  name: 'bastion',
  title: 'Bastion',
  version: VERSION,
} as const;

export const SERVER_INSTRUCTIONS =
  'Bastion serves one workspace directory. Paths are relative to the workspace root ("." is the root); ' +
  'absolute paths inside it are accepted. Secrets and .git are protected and hidden. Use read_text_file with ' +
  'head or tail for large files, search_files to find files by name and grep_files to search their contents.';

/**
 * How a server delivers resource updates: 'subscribe' serves resources/subscribe on a connection that lives
 * on (stdio); 'listen' declares the capability for 2026-07-28 subscriptions/listen streams, which the HTTP
 * service feeds; 'none' for stateless 2025 HTTP, which has no channel to deliver them on.
 */
export type ResourceUpdates = 'subscribe' | 'listen' | 'none';

/**
 * What every Bastion MCP server declares. Resource subscriptions depend on the transport; tool-list changes
 * are announced where tools come and go (upstreams) and the transport has a channel to tell the client on.
 */
export function serverCapabilities(updates: ResourceUpdates, dynamicTools = false) {
  return {
    tools: { listChanged: dynamicTools && updates !== 'none' },
    resources: { listChanged: false, subscribe: updates !== 'none' },
    prompts: { listChanged: false },
    completions: {},
    logging: {},
  };
}

// Lists differ by principal, so they may be cached by the requesting client only (2026-07-28 caching hints).
// With upstreams, the tool list follows their health: kept briefly, like the resource list.
const hintsWithToolsTtl = (toolsTtlMs: number) =>
  ({
    'tools/list': { ttlMs: toolsTtlMs, cacheScope: 'private' },
    'prompts/list': { ttlMs: 60_000, cacheScope: 'private' },
    'resources/templates/list': { ttlMs: 60_000, cacheScope: 'private' },
    'resources/list': { ttlMs: 5_000, cacheScope: 'private' },
    'resources/read': { ttlMs: 0, cacheScope: 'private' },
    'server/discover': { ttlMs: 60_000, cacheScope: 'private' },
  }) as const;
const STATIC_TOOLS_HINTS = hintsWithToolsTtl(60_000);
const DYNAMIC_TOOLS_HINTS = hintsWithToolsTtl(5_000);

export type CacheHints = typeof STATIC_TOOLS_HINTS;

/** The caching hints of 2026-07-28 list results, by method: built once, shared by every answer. */
export function cacheHints(dynamicTools: boolean): CacheHints {
  return dynamicTools ? DYNAMIC_TOOLS_HINTS : STATIC_TOOLS_HINTS;
}
