/** The scopes of Bastion's own tools and routes. */
export const SCOPES = ['files:read', 'files:write', 'agent', 'admin'] as const;
export type BuiltinScope = (typeof SCOPES)[number];
/** The scope that guards the tools of one upstream MCP server, unless its config names another. */
export type UpstreamScope = `upstream:${string}`;
export type Scope = BuiltinScope | UpstreamScope;

/** An upstream's name as it appears in its scope and metric labels. */
export const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

/** How scopes are spelled in errors and help. */
export const SCOPE_NAMES = `${SCOPES.join(', ')} or upstream:<name>`;

export function isScope(value: string): value is Scope {
  if ((SCOPES as readonly string[]).includes(value)) return true;
  return value.startsWith('upstream:') && UPSTREAM_NAME.test(value.slice('upstream:'.length));
}

/** Who is calling: every tool call carries one, whatever the transport. */
export interface Principal {
  /** Stable identifier of the client (never a secret). */
  readonly id: string;
  /** How the principal was established. */
  readonly kind: 'local' | 'api-key' | 'oauth';
  readonly scopes: ReadonlySet<Scope>;
  /** The workspace root this principal is bound to (absolute); absent for the server's shared root. */
  readonly workspace?: string;
  /** Rate-limit tier. */
  readonly tier: string;
  /** The id of the API key used (never the key itself), when there is one. */
  readonly credential?: string;
}

/**
 * The principal of a server without authentication (loopback only) or of a stdio connection: the person at
 * this machine. Over HTTP it also holds admin, since anyone who can reach a loopback-only server is local.
 * It holds the scopes of the configured upstreams too: the operator configured them for this person.
 */
export function localPrincipal(
  readOnly: boolean,
  admin = false,
  upstreams: readonly UpstreamScope[] = [],
): Principal {
  const scopes: Scope[] = ['files:read', 'agent', ...upstreams];
  if (!readOnly) scopes.push('files:write');
  if (admin) scopes.push('admin');
  return { id: 'local', kind: 'local', scopes: new Set(scopes), tier: 'default' };
}

/** The first of `scopes` the principal lacks, or undefined when it holds them all. */
export function missingScope(principal: Principal, scopes: readonly Scope[]): Scope | undefined {
  return scopes.find((scope) => !principal.scopes.has(scope));
}
