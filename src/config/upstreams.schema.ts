import { z } from 'zod';
import { isScope, SCOPE_NAMES, UPSTREAM_NAME, type Scope, type UpstreamScope } from '../auth/principal.js';
import { own } from '../common/own.js';

const positiveInt = z.coerce.number().int().positive();

/** Keys of other clients' files that mean nothing here (their approval lists: Bastion's approval is a scope). */
const CLIENT_ONLY_KEYS = ['autoApprove', 'alwaysAllow'] as const;

const TRANSPORT_TYPES: Record<string, 'stdio' | 'http'> = {
  stdio: 'stdio',
  http: 'http',
  'streamable-http': 'http',
  streamableHttp: 'http',
};

/** Names the tools of an upstream, as the upstream spells them (before the prefix). */
const toolNames = z.array(z.string().min(1).max(128));

const upstreamEntry = z
  .object({
    type: z.enum(['stdio', 'http'], {
      error: (issue) =>
        issue.input === 'sse'
          ? 'the SSE transport is not supported: give the Streamable HTTP endpoint (type http)'
          : 'expected stdio or http',
    }),
    /** stdio: the program to start, its arguments, its environment (added to a minimal one) and directory. */
    command: z.string().min(1).optional(),
    args: z.array(z.string()).default([]),
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().min(1).optional(),
    /** http: the Streamable HTTP endpoint and the headers sent with every request (secrets: from ${env:NAME}). */
    url: z.url({ protocol: /^https?$/ }).optional(),
    headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/), z.string()).default({}),
    enabled: z.boolean().default(true),
    /** Time one call may take, retries excluded. */
    timeoutMs: positiveInt.max(3_600_000).default(30_000),
    /** Retries after a failed attempt, only for tools the upstream marks read-only or idempotent. */
    maxRetries: z.coerce.number().int().min(0).max(5).default(2),
    /** How often the connection is checked (ping) while it is quiet. */
    healthCheckIntervalMs: positiveInt.min(1_000).default(30_000),
    /** Consecutive failures (calls or checks) that open the circuit and hide the tools. */
    breakerFailures: positiveInt.max(100).default(3),
    /** How long an open circuit waits before one check tries the upstream again. */
    breakerHalfOpenMs: positiveInt.min(100).default(10_000),
    /** The scope a principal needs to see and call this upstream's tools; defaults to upstream:<name>. */
    scope: z.string().refine(isScope, `expected ${SCOPE_NAMES}`).optional(),
    /** Which of the upstream's tools are offered: only `allow` when given, never `deny`. */
    tools: z
      .object({ allow: toolNames.optional(), deny: toolNames.default([]) })
      .strict()
      .prefault({}),
    /** Put before each tool name; defaults to `<name>_`. */
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]{0,32}$/, 'expected up to 32 letters, digits, _ or -')
      .optional(),
    /** http: MCP clients kept open to the upstream, used by the call with the fewest in flight. */
    pool: positiveInt.max(16).default(2),
  })
  .strict()
  .superRefine((entry, ctx) => {
    const issue = (key: string, message: string) => ctx.addIssue({ code: 'custom', path: [key], message });
    if (entry.type === 'stdio') {
      if (!entry.command) issue('command', 'required for a stdio upstream');
      if (entry.url) issue('url', 'only for an http upstream');
      if (Object.keys(entry.headers).length > 0) issue('headers', 'only for an http upstream');
    } else {
      if (!entry.url) issue('url', 'required for an http upstream');
      if (entry.command) issue('command', 'only for a stdio upstream');
      if (entry.cwd) issue('cwd', 'only for a stdio upstream');
    }
  });

/**
 * One upstream as written in Bastion's `servers`, VS Code's `servers` or Claude Desktop's `mcpServers`:
 * `type` may be left out (a command means stdio, a url http), `disabled` is read as the opposite of
 * `enabled`, and other clients' approval lists are ignored.
 */
const upstream = z.preprocess((value) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const { disabled, ...rest } = value as Record<string, unknown>;
  for (const key of CLIENT_ONLY_KEYS) delete rest[key];
  if (typeof disabled === 'boolean' && rest.enabled === undefined) rest.enabled = !disabled;
  if (rest.type === undefined) rest.type = rest.url !== undefined ? 'http' : 'stdio';
  else if (typeof rest.type === 'string') rest.type = own(TRANSPORT_TYPES, rest.type) ?? rest.type;
  return rest;
}, upstreamEntry);

/** The upstream MCP servers, by name; each gets its name, and its scope and prefix when they were left out. */
export const upstreamsSchema = z
  .record(
    z.string().regex(UPSTREAM_NAME, 'expected up to 32 letters, digits, _ or - (the upstream name)'),
    upstream,
  )
  .default({})
  .transform((entries) =>
    Object.entries(entries).map(([name, entry]): UpstreamConfig => ({
      ...entry,
      name,
      scope: (entry.scope ?? `upstream:${name}`) as Scope,
      prefix: entry.prefix ?? `${name}_`,
    })),
  );

export type UpstreamConfig = Omit<z.output<typeof upstreamEntry>, 'scope' | 'prefix'> & {
  name: string;
  scope: Scope;
  prefix: string;
};

/** The upstream scopes the configured upstreams need (the local principal holds them). */
export function upstreamScopes(upstreams: readonly UpstreamConfig[]): UpstreamScope[] {
  const scopes = upstreams.flatMap((u) =>
    u.scope.startsWith('upstream:') ? [u.scope as UpstreamScope] : [],
  );
  return [...new Set(scopes)];
}
