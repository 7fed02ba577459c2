import { Command, Option } from 'commander';
import { loadConfig } from '../config/config.loader.js';
import type { BastionConfig } from '../config/config.schema.js';
import { backupReport, restoreReport } from './backup-report.js';
import { BackupError } from './backup.errors.js';
import { createBackup } from './data-backup.js';
import { restoreBackup, verifyBackup } from './data-restore.js';

type Out = (line: string) => void;

interface StateFlags {
  dataDir?: string;
  config?: string;
}

interface BackupFlags extends StateFlags {
  out: string;
}

interface RestoreFlags extends StateFlags {
  from: string;
  force?: boolean;
}

/** `bastion backup --out DIR`: a consistent copy of a server's state, safe while it runs. */
export function backupCommand(out: Out): Command {
  return withStateOptions(
    new Command('backup')
      .description(
        'copy the data directory (conversations database, keys file, audit log) into a new directory, ' +
          'with a manifest of SHA-256 checksums; safe while the server runs',
      )
      .requiredOption('--out <dir>', 'a new or empty directory for the backup (created 0700)'),
  ).action((flags: BackupFlags) =>
    reported(async () => {
      const result = await createBackup(configFor(flags), flags.out);
      for (const line of backupReport(result)) out(line);
      // Written, but something in the live state was wrong: a monitored job should hear about it.
      if (result.manifest.problems.length > 0) process.exitCode = 1;
    }),
  );
}

/** `bastion restore --from DIR`: checks a backup, then puts it in place of a stopped server's state. */
export function restoreCommand(out: Out): Command {
  return withStateOptions(
    new Command('restore')
      .description(
        'verify a backup against its manifest and restore it into the data directory; refuses a damaged ' +
          'backup, a data directory in use by a server, and one that holds state unless --force',
      )
      .requiredOption('--from <dir>', 'a directory written by bastion backup')
      .option('--force', 'replace the state already there (the replaced files are kept, renamed)'),
  ).action((flags: RestoreFlags) =>
    reported(async () => {
      const config = configFor(flags);
      const backup = await verifyBackup(flags.from);
      const result = await restoreBackup(backup, config, { force: flags.force === true });
      for (const line of restoreReport(backup, result)) out(line);
    }),
  );
}

function withStateOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--data-dir <dir>', 'directory for Bastion state (BASTION_DATA_DIR; default ./data)'),
    )
    .addOption(new Option('--config <file>', 'config file, JSON or YAML (BASTION_CONFIG)'));
}

/** The server's own config, so the keys file and audit log are found where the server keeps them. */
function configFor(flags: StateFlags): BastionConfig {
  return loadConfig({
    ...(flags.config ? { file: flags.config } : {}),
    overrides: { dataDir: flags.dataDir },
  });
}

/** A refusal is printed like every command's error, with its own exit code; anything else goes up (2). */
async function reported(run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (!(error instanceof BackupError)) throw error;
    process.stderr.write(`bastion: ${error.message}\n`);
    process.exitCode = error.exitCode;
  }
}
