import { BastionError } from '../../common/bastion-error.js';

export type ProviderErrorCode =
  /** 401/403: the API key is missing, wrong or lacks access. */
  | 'provider_auth'
  /** 400/404/422: the request was refused as malformed (or the model does not exist). */
  | 'provider_bad_request'
  /** The conversation no longer fits the model's context window. */
  | 'context_too_long'
  /** 429. */
  | 'provider_rate_limited'
  /** 5xx, 529 (overloaded), connection failures. */
  | 'provider_unavailable'
  /** No answer within the per-call timeout. */
  | 'provider_timeout'
  /** The circuit breaker is open after repeated failures: calls are refused without trying. */
  | 'provider_circuit_open';

const RETRYABLE: ReadonlySet<ProviderErrorCode> = new Set([
  'provider_rate_limited',
  'provider_unavailable',
  'provider_timeout',
]);

/**
 * A model provider failed. The message is Bastion's own and safe to show the caller: it never carries
 * the provider's raw error text (which can echo part of an API key) or the request.
 */
export class ProviderError extends BastionError {
  declare readonly code: ProviderErrorCode;
  readonly retryable: boolean;

  constructor(
    code: ProviderErrorCode,
    message: string,
    readonly details: {
      provider: string;
      /** HTTP status from the provider, when there was one. */
      status?: number;
      /** How long the provider asked us to wait (Retry-After / retry-after-ms), in milliseconds. */
      retryAfterMs?: number;
    },
  ) {
    super(code, message);
    this.retryable = RETRYABLE.has(code);
  }
}
