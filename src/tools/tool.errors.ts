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
