import { BastionError } from '../common/bastion-error.js';
import type { Scope } from './principal.js';

/** Why a credential was refused: a metrics label and a log field, never shown to the client in detail. */
export type AuthFailureReason =
  | 'missing'
  | 'malformed'
  | 'unknown_key'
  | 'revoked'
  | 'expired'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'bad_signature'
  | 'unknown_signing_key'
  | 'algorithm_not_allowed'
  | 'invalid_claims'
  | 'jwks_unavailable';

/** 401: no credential, or one that was not accepted. `challenge` is the WWW-Authenticate value. */
export class AuthFailure extends BastionError {
  constructor(
    readonly reason: AuthFailureReason,
    message: string,
    readonly challenge: string,
  ) {
    super(reason, message);
  }
}

/** 403: a valid credential without the scope a route or tool needs. */
export class ScopeFailure extends BastionError {
  constructor(
    readonly scope: Scope,
    readonly challenge: string,
    /** The id of the principal that lacked the scope. */
    readonly principal?: string,
  ) {
    super('insufficient_scope', `Forbidden: this needs the ${scope} scope.`);
  }
}
