import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { Command } from 'commander';
import { own } from '../common/own.js';
import { GENESIS_HASH, verifyAuditLogs, type AuditVerdict } from './audit-record.js';

type Out = (line: string) => void;

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
};

/** `bastion audit verify FILE...`: checks an audit log's hash chain, across rotated files oldest first. */
export function auditCommand(out: Out): Command {
  const audit = new Command('audit').description('check the audit log');
  audit
    .command('verify')
    .description(
      'verify the hash chain of an audit log: exit 0 if intact, 1 naming the first bad line; ' +
        'give rotated files oldest first and the current file last',
    )
    .argument('<files...>', 'audit log files (JSONL)')
    .action(async (files: string[]) => {
      const verdict = await readable(files)
        .then(() => verifyAuditLogs(files))
        .catch((error: unknown) => {
          throw unreadable(error);
        });
      if (!verdict.ok) process.exitCode = 1;
      out(describe(verdict));
    });
  return audit;
}

function describe(verdict: AuditVerdict): string {
  if (!verdict.ok) return `${verdict.file}:${verdict.line}: ${verdict.reason}`;
  const records = `${verdict.records} record${verdict.records === 1 ? '' : 's'}`;
  const last = `(last hash ${verdict.lastHash})`;
  if (verdict.anchor === GENESIS_HASH) return `ok: ${records}, chain intact ${last}`;
  const first = verdict.lastSeq - verdict.records + 1;
  return `ok: ${records} (seq ${first} to ${verdict.lastSeq}), chain intact from its first prev ${verdict.anchor}, taken on trust ${last}`;
}

/** Checked up front so that the error names the file; a read error mid-file names none. */
async function readable(files: string[]): Promise<void> {
  for (const file of files) {
    if (!(await stat(file)).isFile()) throw new Error(`Cannot read audit log ${file}: not a regular file.`);
    await access(file, constants.R_OK);
  }
}

/** Reported by the command line's error path, which exits 2. */
function unreadable(error: unknown): Error {
  const { code, path } = error as NodeJS.ErrnoException;
  if (!code || !path) return error instanceof Error ? error : new Error(String(error));
  return new Error(`Cannot read audit log ${path}: ${own(READ_ERRORS, code) ?? code}.`);
}
