import { BastionError } from '../common/bastion-error.js';

/** The call cannot be dispatched: no such tool, or arguments that do not fit its schema (JSON-RPC -32602). */
export class InvalidToolCall extends BastionError {
  constructor(
    code: 'unknown_tool' | 'invalid_arguments',
    message: string,
    readonly details?: readonly string[],
  ) {
    super(code, message);
  }
}

/** The tool ran (or was checked) and refuses: answered as a tool result with isError. */
export class ToolRefusal extends BastionError {}

/**
 * The tool could not do its work for a reason outside the caller's control (an upstream server failed or
 * timed out): answered as a tool result with isError and this message, and counted as an error.
 */
export class ToolFailure extends BastionError {}

/**
 * A prompt or workspace operation the door refused or could not complete: its code and safe message, for
 * the transport to answer as a protocol error (an unknown resource, bad arguments, a missing scope...).
 */
export class OperationRefused extends BastionError {
  readonly protocol: boolean;
  readonly details: readonly string[] | undefined;

  constructor(failure: { code: string; message: string; protocol: boolean; details?: readonly string[] }) {
    super(failure.code, failure.message);
    this.protocol = failure.protocol;
    this.details = failure.details;
  }
}
