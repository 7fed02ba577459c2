export const SCOPES = ['files:read', 'files:write', 'agent', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Who is calling: every tool call carries one, whatever the transport. */
export interface Principal {
  /** Stable identifier of the client (never a secret). */
  readonly id: string;
  /** How the principal was established. */
  readonly kind: 'local' | 'api-key' | 'oauth';
  readonly scopes: ReadonlySet<Scope>;
}

/** The principal of a server without authentication (loopback only) or of a stdio connection. */
export function localPrincipal(readOnly: boolean): Principal {
  const scopes: Scope[] = readOnly ? ['files:read', 'agent'] : ['files:read', 'files:write', 'agent'];
  return { id: 'local', kind: 'local', scopes: new Set(scopes) };
}
