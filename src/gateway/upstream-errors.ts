import {
  ProtocolError,
  ProtocolErrorCode,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
} from '@modelcontextprotocol/client';
import { redactSecrets } from '../observability/secret-redaction.js';

const MAX_ERROR_CHARS = 300;

/**
 * HTTP answers that say the upstream cannot serve anyone now: Bastion's credentials refused (401, 403), the
 * session gone (404, after the upstream restarted), too busy (429), or broken (5xx). A 400 or 413 is about
 * one request.
 */
const FAILING_STATUSES = new Set([401, 403, 404, 429]);

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
  return error instanceof TypeError; // fetch: the upstream could not be reached
}

/** What a retry may help with: a failure that was not a timeout (a hung upstream would hang again). */
export function isRetryable(error: Error): boolean {
  if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout) return false;
  return isUpstreamFailure(error);
}

/** A failure in words that are safe to show: no stack, the upstream's own message cut short and redacted. */
export function describeFailure(error: unknown): string {
  if (error instanceof SdkHttpError) return `answered HTTP ${error.status}`;
  if (error instanceof ProtocolError) return `answered with an error: ${shortened(error.message)}`;
  if (error instanceof SdkError) {
    if (error.code === SdkErrorCode.ConnectionClosed) return 'closed the connection';
    if (error.code === SdkErrorCode.RequestTimeout) return 'did not answer in time';
  }
  const system = causes(error).find((e): e is NodeJS.ErrnoException => !!(e as NodeJS.ErrnoException).code);
  if (system?.syscall?.startsWith('spawn')) return `could not be started (${system.code})`;
  if (system) return `could not be reached (${system.code})`;
  return `failed: ${shortened(error instanceof Error ? error.message : String(error))}`;
}

/** The error and its causes, outermost first. */
export function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e && chain.length < 5; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

/** An upstream's text (an error message) as Bastion repeats it: cut short, secrets by shape redacted. */
export function shortened(text: string): string {
  const cut = text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text;
  return redactSecrets(cut);
}
