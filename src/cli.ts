#!/usr/bin/env node
import './node-version.js';
import { Command, Option } from 'commander';
import { keysCommand, type KeysFlags } from './auth/keys.command.js';
import { backupCommand, restoreCommand } from './backup/backup.command.js';
import { chatCommand } from './chat/chat.command.js';
import { ConfigError } from './config/config.errors.js';
import { loadConfig } from './config/config.loader.js';
import { doctorCommand } from './health/doctor.command.js';
import { VERSION } from './mcp/server-info.js';
import { auditCommand } from './observability/audit.command.js';
import type { CommonFlags, ServeFlags } from './serving-common.js';

function fail(error: unknown): never {
  if (error instanceof ConfigError || error instanceof Error) {
    process.stderr.write(`bastion: ${error.message}\n`);
  } else {
    process.stderr.write('bastion: failed to start\n');
  }
  process.exit(2);
}

const program = new Command()
  .name('bastion')
  .description('A production MCP server: a sandboxed workspace over Streamable HTTP and stdio.')
  .version(VERSION, '-v, --version');

const common = (command: Command): Command =>
  command
    .addOption(
      new Option('--workspace <dir>', 'workspace directory (BASTION_WORKSPACE; default ./workspace)'),
    )
    .addOption(new Option('--config <file>', 'config file, JSON or YAML (BASTION_CONFIG)'))
    .addOption(new Option('--read-only', 'refuse every change to the workspace (BASTION_READ_ONLY)'))
    .addOption(
      new Option('--data-dir <dir>', 'directory for Bastion state (BASTION_DATA_DIR; default ./data)'),
    );

common(
  program
    .command('serve')
    .description('serve MCP over Streamable HTTP at /mcp')
    .addOption(new Option('--host <host>', 'address to bind (BASTION_HOST; default 127.0.0.1)'))
    .addOption(new Option('--port <port>', 'port to listen on (BASTION_PORT; default 3000)'))
    .addOption(
      new Option(
        '--workers <n>',
        'processes serving the port, a number or auto for one per CPU (BASTION_WORKERS; default 1)',
      ),
    ),
).action((flags: ServeFlags) => import('./serving.js').then(({ serve }) => serve(flags)).catch(fail));

common(program.command('stdio').description('serve MCP over stdin/stdout for a local client')).action(
  (flags: CommonFlags) => import('./stdio-serving.js').then(({ stdio }) => stdio(flags)).catch(fail),
);

program.addCommand(
  keysCommand(
    (flags: KeysFlags) =>
      loadConfig({
        ...(flags.config ? { file: flags.config } : {}),
        overrides: { dataDir: flags.dataDir, 'auth.keysFile': flags.keysFile },
      }),
    (line) => process.stdout.write(`${line}\n`),
  ),
);

program.addCommand(auditCommand((line) => process.stdout.write(`${line}\n`)));

program.addCommand(chatCommand());

program.addCommand(
  doctorCommand(
    (flags) => loadConfig(flags.config ? { file: flags.config } : {}),
    (line) => process.stdout.write(`${line}\n`),
  ),
);

program.addCommand(backupCommand((line) => process.stdout.write(`${line}\n`)));

program.addCommand(restoreCommand((line) => process.stdout.write(`${line}\n`)));

program.parseAsync(process.argv).catch(fail);
