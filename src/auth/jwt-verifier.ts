import type { JWTPayload } from 'jose';
import type { BastionConfig } from '../config/config.schema.js';
import type { AuthFailureReason } from './auth.errors.js';
import { isScope, type Principal, type Scope } from './principal.js';
import { own } from '../common/own.js';

type OAuthConfig = BastionConfig['auth']['oauth'];
type Jose = typeof import('jose');

export class TokenRejected extends Error {
  constructor(readonly reason: AuthFailureReason) {
    super(reason);
  }
}

/**
 * OAuth 2.1 resource-server verification of JWT access tokens (MCP authorization spec): the signature
 * against the issuer's JWKS (fetched and cached by jose, refetched when an unknown key id appears), an
 * allowlisted algorithm, the exact issuer, this server as audience, expiry with a small clock tolerance.
 * The token itself is never stored, logged or forwarded. jose is loaded with the first token: a server that
 * sees none (API keys only, or local use) never loads it.
 */
export class JwtVerifier {
  private jose?: Promise<{ jose: Jose; keys: ReturnType<Jose['createRemoteJWKSet']> }>;

  constructor(
    private readonly config: OAuthConfig & { issuer: string; jwksUrl: string },
    private readonly audience: () => string,
  ) {}

  private load() {
    this.jose ??= import('jose').then((jose) => ({
      jose,
      keys: jose.createRemoteJWKSet(new URL(this.config.jwksUrl), {
        timeoutDuration: 5_000,
        cooldownDuration: 30_000,
      }),
    }));
    return this.jose;
  }

  async verify(token: string): Promise<Principal> {
    const { jose, keys } = await this.load();
    let payload: JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, keys, {
        issuer: this.config.issuer,
        audience: this.audience(),
        algorithms: this.config.algorithms,
        clockTolerance: this.config.clockToleranceSec,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      throw new TokenRejected(reasonFor(jose.errors, error));
    }
    return { id: `oauth:${payload.sub}`, kind: 'oauth', scopes: this.scopesOf(payload), tier: 'default' };
  }

  private scopesOf(payload: JWTPayload): Set<Scope> {
    const claim =
      payload[this.config.scopeClaim] ?? (this.config.scopeClaim === 'scope' ? payload.scp : undefined);
    const granted =
      typeof claim === 'string' ? claim.split(' ') : Array.isArray(claim) ? claim.map(String) : [];
    const scopes = new Set<Scope>();
    for (const name of granted) {
      const mapped = own(this.config.scopeMap, name) ?? (isScope(name) ? [name] : []);
      for (const scope of mapped) scopes.add(scope);
    }
    return scopes;
  }
}

function reasonFor(errors: Jose['errors'], error: unknown): AuthFailureReason {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return 'wrong_issuer';
    if (error.claim === 'aud') return 'wrong_audience';
    return 'invalid_claims';
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported)
    return 'algorithm_not_allowed';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return 'unknown_signing_key';
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) return 'jwks_unavailable';
  if (error instanceof errors.JOSEError) return 'malformed';
  // A failed JWKS fetch surfaces as a plain network error.
  return 'jwks_unavailable';
}
