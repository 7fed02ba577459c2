export const SCOPES = ['files:read', 'files:write', 'agent', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
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
 */
export function localPrincipal(readOnly: boolean, admin = false): Principal {
  const scopes: Scope[] = ['files:read', 'agent'];
  if (!readOnly) scopes.push('files:write');
  if (admin) scopes.push('admin');
  return { id: 'local', kind: 'local', scopes: new Set(scopes), tier: 'default' };
}
