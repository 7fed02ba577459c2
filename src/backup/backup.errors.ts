import { BastionError } from '../common/bastion-error.js';

/**
 * A refused backup or restore. Exit codes follow `bastion audit verify`: 1 when something was checked and
 * found wrong (a tampered or incomplete backup), 2 when the command could not or would not run (a
 * non-empty --out, a data directory in use or already holding state).
 */
export class BackupError extends BastionError {
  private constructor(
    code: string,
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(code, message);
  }

  /** The backup failed a check: its files do not match its manifest, or they are not what they claim. */
  static integrity(code: string, message: string): BackupError {
    return new BackupError(code, message, 1);
  }

  /** The command was refused before it changed anything. */
  static refused(code: string, message: string): BackupError {
    return new BackupError(code, message, 2);
  }
}
