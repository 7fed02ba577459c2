import {
  ProtocolError,
  ProtocolErrorCode,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
} from '@modelcontextprotocol/client';
import { printable } from '../common/printable.js';
import { redactSecrets } from '../observability/secret-redaction.js';

const MAX_ERROR_CHARS = 300;

/**
 * HTTP answers that say the upstream cannot serve anyone now: Bastion's credentials refused (401, 403), the
 * session gone (404, after the upstream restarted), too busy (429), or broken (5xx). A 400 or 413 is about
 * one request.
 */
const FAILING_STATUSES = new Set([401, 403, 404, 429]);

/** The shape of a system error's code (ECONNREFUSED, EAI_AGAIN, UND_ERR_SOCKET): never free text. */
const CODE = /^[A-Z][A-Z0-9_]{1,40}$/;

/** What a failure says about the upstream's health: it counts towards opening the circuit. */
export function isUpstreamFailure(error: Error): boolean {
  if (error instanceof SdkHttpError) return FAILING_STATUSES.has(error.status) || error.status >= 500;
  if (error instanceof ProtocolError) return error.code === ProtocolErrorCode.InternalError;
  if (error instanceof SdkError)
    return [
      SdkErrorCode.RequestTimeout,
      SdkErrorCode.ConnectionClosed,
      SdkErrorCode.NotConnected,
      SdkErrorCode.SendFailed,
    ].includes(error.code as SdkErrorCode);
  return isNetworkFailure(error);
}

/**
 * fetch could not reach the upstream: undici's `TypeError('fetch failed')` caused by a system error. Any other
 * TypeError is a bug of Bastion's, and must not open an upstream's circuit. (By name: fetch's errors may come
 * from another realm than this module's TypeError.)
 */
function isNetworkFailure(error: Error): boolean {
  return error.name === 'TypeError' && error.message === 'fetch failed' && systemCode(error) !== undefined;
}

/** What a retry may help with: a failure that was not a timeout (a hung upstream would hang again). */
export function isRetryable(error: Error): boolean {
  if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout) return false;
  return isUpstreamFailure(error);
}

/**
 * What went wrong, in Bastion's words only: no text of the upstream's (its error message, its HTTP body), so
 * it is safe to show any caller.
 */
export function failureKind(error: unknown): string {
  if (error instanceof SdkHttpError) return `answered HTTP ${error.status}`;
  if (error instanceof ProtocolError) return `answered with an error (${error.code})`;
  if (error instanceof SdkError) {
    if (error.code === SdkErrorCode.ConnectionClosed) return 'closed the connection';
    if (error.code === SdkErrorCode.RequestTimeout) return 'did not answer in time';
    if (error.code === SdkErrorCode.NotConnected) return 'is not connected';
  }
  const code = systemCode(error);
  if (code && isSpawnFailure(error)) return `could not be started (${code})`;
  if (code) return `could not be reached (${code})`;
  return 'failed';
}

/**
 * failureKind with the upstream's own words after it, for the operator (the log, `bastion doctor`,
 * /diagnostics): cleaned of control characters, secrets by shape redacted, cut to `maxChars`.
 */
export function failureDetail(error: unknown, maxChars = MAX_ERROR_CHARS): string {
  const kind = failureKind(error);
  const said = ownWords(error);
  return said ? `${kind}: ${shortened(said, maxChars)}` : kind;
}

/** The error and its causes, outermost first. */
export function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e && chain.length < 5; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

/** An upstream's text (an error message) as Bastion repeats it: printable, secrets by shape redacted, cut short. */
export function shortened(text: string, maxChars = MAX_ERROR_CHARS): string {
  const clean = redactSecrets(printable(text));
  return clean.length > maxChars ? `${clean.slice(0, maxChars)}…` : clean;
}

/** The message that carries the upstream's words, when the kind alone does not say everything. */
function ownWords(error: unknown): string | undefined {
  const words =
    error instanceof ProtocolError || error instanceof SdkHttpError || failureKind(error) === 'failed';
  return words && error instanceof Error && error.message ? error.message : undefined;
}

/** The code of a system error in the chain: Node's (it names its syscall) or undici's network errors. */
function systemCode(error: unknown): string | undefined {
  for (const e of causes(error)) {
    const { code, syscall } = e as { code?: unknown; syscall?: unknown };
    if (typeof code !== 'string' || !CODE.test(code)) continue;
    if (typeof syscall === 'string' || code.startsWith('UND_ERR_')) return code;
  }
  return undefined;
}

function isSpawnFailure(error: unknown): boolean {
  return causes(error).some((e) => (e as NodeJS.ErrnoException).syscall?.startsWith('spawn'));
}
