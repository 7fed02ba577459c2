import { BastionError } from '../common/bastion-error.js';

export type SandboxRefusalCode =
  | 'invalid_path'
  | 'outside_workspace'
  | 'denied'
  | 'not_found'
  | 'link_refused'
  | 'special_file'
  | 'hard_link'
  | 'not_a_directory'
  | 'is_a_directory'
  | 'already_exists'
  | 'too_large'
  | 'read_only'
  | 'limit_exceeded'
  | 'invalid_pattern'
  | 'io_error';

/**
 * A request the sandbox will not carry out. The message says what was refused and why, quoting only the path
 * the client sent: never a host path, the workspace root, or a system error text.
 */
export class SandboxRefusal extends BastionError {
  constructor(
    override readonly code: SandboxRefusalCode,
    message: string,
  ) {
    super(code, message);
  }
}

/** Formats a client-supplied path for a message: quoted, control characters escaped, length bounded. */
export function quote(clientPath: string): string {
  const shown = clientPath.length > 200 ? `${clientPath.slice(0, 200)}…` : clientPath;
  return JSON.stringify(shown);
}
