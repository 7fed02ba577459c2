import { ProviderError, type ProviderErrorCode } from './provider.errors.js';

type ErrorClass = abstract new (...args: never[]) => Error;

/** The error classes of one Stainless-generated SDK (`@anthropic-ai/sdk`, `openai`): they share the shape. */
export interface SdkErrorClasses {
  /** Base class: `status` and `headers` when the provider answered. */
  APIError: ErrorClass;
  APIUserAbortError: ErrorClass;
  APIConnectionError: ErrorClass;
  APIConnectionTimeoutError: ErrorClass;
}

interface StatusError {
  status?: number;
  headers?: Headers;
  code?: unknown;
  message: string;
}

// The providers' wording for "the conversation does not fit": Anthropic "prompt is too long: N tokens > M
// maximum", OpenAI "maximum context length is N tokens" (code context_length_exceeded), and the like from
// OpenAI-compatible servers. Matched only to classify; the text itself is never passed on.
const CONTEXT_TOO_LONG =
  /context[ _-]?(length|window)|too many tokens|prompt is too long|maximum context|input is too long|reduce the length/i;

/**
 * Turns whatever an SDK call threw into what the provider should throw: the caller's abort reason unchanged
 * when the caller cancelled, otherwise a ProviderError whose message is Bastion's own. The provider's error
 * text is never copied: OpenAI echoes part of the API key in its 401 message.
 */
export function providerFailure(
  provider: string,
  error: unknown,
  signal: AbortSignal,
  sdk: SdkErrorClasses,
): unknown {
  // Cancellation is the caller's decision, not a provider failure: hand back exactly what they aborted with.
  if (signal.aborted) return signal.reason;
  if (error instanceof ProviderError) return error;
  // The SDK aborts only on our signal, checked above; anything else is an SDK surprise, not a timeout.
  if (error instanceof sdk.APIUserAbortError)
    return failure(provider, 'provider_unavailable', 'request was aborted');
  if (error instanceof sdk.APIConnectionTimeoutError || isTimeoutError(error))
    return failure(provider, 'provider_timeout', 'did not answer in time');
  if (error instanceof sdk.APIConnectionError)
    return failure(provider, 'provider_unavailable', 'could not be reached (connection failed)');
  if (error instanceof sdk.APIError) {
    const answered = error as Error & StatusError;
    if (typeof answered.status === 'number') return fromStatus(provider, answered.status, answered);
  }
  return failure(provider, 'provider_unavailable', 'failed with an unexpected error');
}

function fromStatus(provider: string, status: number, error: StatusError): ProviderError {
  const after = retryAfterMs(error.headers);
  const details = { provider, status, ...(after !== undefined && { retryAfterMs: after }) };
  const api = `The ${provider} API`;
  const keyVar = `${provider.toUpperCase()}_API_KEY`;
  const make = (code: ProviderErrorCode, message: string) => new ProviderError(code, message, details);

  if (status === 401) return make('provider_auth', `${api} key was refused (401). Check ${keyVar}.`);
  if (status === 403)
    return make('provider_auth', `${api} key lacks access to this model or endpoint (403). Check ${keyVar}.`);
  if (status === 402)
    return make('provider_auth', `${api} account cannot be billed for this request (402). Check its plan.`);
  if (status === 413 || ((status === 400 || status === 422) && looksTooLong(error)))
    return make(
      'context_too_long',
      `The conversation no longer fits the ${provider} model's context window (${status}). Start a new one or shorten the prompt.`,
    );
  if (status === 404)
    return make(
      'provider_bad_request',
      `${api} did not find the model or endpoint (404). Check the model name and base URL.`,
    );
  if (status === 408) return make('provider_timeout', `${api} did not answer in time (408).`);
  if (status === 429) return make('provider_rate_limited', `${api} is rate limiting requests (429).`);
  // 409 is a transient lock conflict on both APIs (the SDKs retry it too); 529 is Anthropic's "overloaded".
  if (status === 409 || status >= 500)
    return make('provider_unavailable', `${api} is unavailable or overloaded (${status}).`);
  return make('provider_bad_request', `${api} refused the request as invalid (${status}).`);
}

function looksTooLong(error: StatusError): boolean {
  return error.code === 'context_length_exceeded' || CONTEXT_TOO_LONG.test(error.message);
}

function isTimeoutError(error: unknown): boolean {
  return error instanceof Error && error.name === 'TimeoutError';
}

function failure(provider: string, code: ProviderErrorCode, what: string): ProviderError {
  return new ProviderError(code, `The ${provider} API ${what}.`, { provider });
}

/**
 * How long the provider asked us to wait, in ms: `retry-after-ms` (both APIs send it) or `retry-after` in
 * seconds or as an HTTP date (RFC 9110 §10.2.3). Undefined when absent or unreadable.
 */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers?.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
