import { getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/server';
import type { BastionConfig } from '../config/config.schema.js';
import { upstreamScopes } from '../config/upstreams.schema.js';
import { parseKey, secretMatches } from './api-key.js';
import { AuthFailure, ScopeFailure, type AuthFailureReason } from './auth.errors.js';
import { JwtVerifier, TokenRejected } from './jwt-verifier.js';
import { KeyStore, keysFilePath, type ApiKeyStore } from './key-store.js';
import { localPrincipal, SCOPES, type Principal, type Scope } from './principal.js';

export type AuthMode = BastionConfig['auth']['mode'];

/** Told about every refused credential (audit and metrics attach here). */
export type AuthFailureObserver = (failure: { reason: AuthFailureReason; mode: AuthMode }) => void;

/**
 * Turns the Authorization header of a request into a Principal, by the configured mode, or refuses it.
 * Fail-closed: anything but a valid credential is an AuthFailure.
 */
export class Authenticator {
  readonly mode: AuthMode;
  /** The authorization server clients are sent to (OAuth mode). */
  readonly issuer: string | undefined;
  private readonly keys: ApiKeyStore | null;
  private readonly jwt: JwtVerifier | null;
  private readonly readOnly: boolean;
  private readonly local: Principal;
  private readonly observers: AuthFailureObserver[] = [];
  private baseUrl: string;
  /** The scopes a token may carry: Bastion's own and those of the configured upstreams. */
  readonly scopesSupported: readonly Scope[];

  /** `keys`: the runtime's key store (required for the redis store); by default the keys file. */
  constructor(config: BastionConfig, keys?: ApiKeyStore) {
    this.mode = config.auth.mode;
    this.issuer = config.auth.oauth.issuer;
    this.readOnly = config.workspace.readOnly;
    const upstreams = upstreamScopes(config.upstreams);
    this.local = localPrincipal(config.workspace.readOnly, true, upstreams);
    this.scopesSupported = [...SCOPES, ...upstreams];
    this.baseUrl = config.server.publicUrl ?? `http://${config.server.host}:${config.server.port}`;
    if (this.mode === 'api-key' && !keys && config.auth.keyStore !== 'file')
      throw new Error('The redis key store is opened by the runtime: pass it to the Authenticator.');
    this.keys = this.mode === 'api-key' ? (keys ?? new KeyStore(keysFilePath(config))) : null;
    const { oauth } = config.auth;
    this.jwt =
      this.mode === 'oauth' && oauth.issuer && oauth.jwksUrl
        ? new JwtVerifier(
            { ...oauth, issuer: oauth.issuer, jwksUrl: oauth.jwksUrl },
            () => oauth.audience ?? this.resourceUrl,
          )
        : null;
  }

  /** Where the server answers, once listening, unless a public URL is configured. */
  listeningAt(origin: string, configuredPublicUrl: string | undefined): void {
    if (!configuredPublicUrl) this.baseUrl = origin;
  }

  /** This server's resource identifier (RFC 8707/9728): the /mcp endpoint's public URL. */
  get resourceUrl(): string {
    return `${this.baseUrl.replace(/\/+$/, '')}/mcp`;
  }

  get resourceMetadataUrl(): string {
    return getOAuthProtectedResourceMetadataUrl(new URL(this.resourceUrl));
  }

  onFailure(observer: AuthFailureObserver): void {
    this.observers.push(observer);
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (this.mode === 'none') return this.local;
    const token = bearerToken(authorization);
    if (token === null) throw this.fail(authorization ? 'malformed' : 'missing');
    const principal = this.mode === 'api-key' ? await this.byKey(token) : await this.byJwt(token);
    if (!this.readOnly || !principal.scopes.has('files:write')) return principal;
    // A read-only server writes for nobody, whatever a credential grants.
    const scopes = new Set(principal.scopes);
    scopes.delete('files:write');
    return { ...principal, scopes };
  }

  /** Refuses a principal without the scope; the challenge tells an OAuth client which scope to ask for. */
  requireScope(principal: Principal, scope: Scope): void {
    if (!principal.scopes.has(scope)) throw new ScopeFailure(scope, this.scopeChallenge(scope), principal.id);
  }

  scopeChallenge(scope: Scope): string {
    return this.challenge('insufficient_scope', `This needs the ${scope} scope.`, scope);
  }

  private async byKey(token: string): Promise<Principal> {
    const parsed = parseKey(token);
    if (!parsed) throw this.fail('malformed');
    const record = await this.keys?.find(parsed.id);
    if (!record || !secretMatches(parsed.secret, record.hash)) throw this.fail('unknown_key');
    if (record.revoked) throw this.fail('revoked');
    return {
      id: record.client,
      kind: 'api-key',
      scopes: new Set(record.scopes),
      tier: record.tier,
      credential: record.id,
      ...(record.workspace ? { workspace: record.workspace } : {}),
    };
  }

  private async byJwt(token: string): Promise<Principal> {
    try {
      return await (this.jwt as JwtVerifier).verify(token);
    } catch (error) {
      if (error instanceof TokenRejected) throw this.fail(error.reason);
      throw error;
    }
  }

  private fail(reason: AuthFailureReason): AuthFailure {
    for (const observer of this.observers) observer({ reason, mode: this.mode });
    const presented = reason !== 'missing';
    const message = presented
      ? 'Unauthorized: the credentials were not accepted.'
      : this.mode === 'api-key'
        ? 'Unauthorized: send an API key as "Authorization: Bearer <key>".'
        : 'Unauthorized: send an OAuth access token as "Authorization: Bearer <token>".';
    const challenge = presented
      ? this.challenge('invalid_token', 'The credentials were not accepted.')
      : this.challenge();
    return new AuthFailure(reason, message, challenge);
  }

  /** WWW-Authenticate (RFC 6750); in OAuth mode it points at the protected-resource metadata (RFC 9728). */
  private challenge(error?: string, description?: string, scope?: string): string {
    const params: string[] = [];
    if (this.mode === 'api-key') params.push('realm="bastion"');
    if (error) params.push(`error="${error}"`);
    if (description) params.push(`error_description="${description}"`);
    if (scope) params.push(`scope="${scope}"`);
    if (this.mode === 'oauth') params.push(`resource_metadata="${this.resourceMetadataUrl}"`);
    return params.length ? `Bearer ${params.join(', ')}` : 'Bearer';
  }
}

function bearerToken(authorization: string | undefined): string | null {
  if (!authorization) return null;
  const match = /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(authorization);
  return match ? (match[1] as string) : null;
}
