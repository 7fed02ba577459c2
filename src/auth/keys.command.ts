import { Command, Option } from 'commander';
import type { BastionConfig } from '../config/config.schema.js';
import { keysFilePath } from './authenticator.js';
import { KeyStore, type KeyRecord } from './key-store.js';
import { isScope, SCOPES, type Scope } from './principal.js';

export interface KeysFlags {
  config?: string;
  dataDir?: string;
  keysFile?: string;
}

interface CreateFlags extends KeysFlags {
  client: string;
  scopes: string;
  workspace?: string;
  tier?: string;
}

type Out = (line: string) => void;

/** `bastion keys create|list|revoke`: API keys, kept hashed in the keys file. */
export function keysCommand(loadConfig: (flags: KeysFlags) => BastionConfig, out: Out): Command {
  const store = (flags: KeysFlags): KeyStore => new KeyStore(keysFilePath(loadConfig(flags)));
  const withFileOptions = (command: Command): Command =>
    command
      .addOption(
        new Option('--keys-file <file>', 'keys file (BASTION_KEYS_FILE; default <data-dir>/keys.json)'),
      )
      .addOption(
        new Option('--data-dir <dir>', 'directory for Bastion state (BASTION_DATA_DIR; default ./data)'),
      )
      .addOption(new Option('--config <file>', 'config file, JSON or YAML (BASTION_CONFIG)'));

  const keys = new Command('keys').description('create, list and revoke API keys');
  withFileOptions(
    keys
      .command('create')
      .description('create a key and print it once, alone on the last line')
      .requiredOption('--client <name>', 'the client this key identifies')
      .requiredOption('--scopes <list>', `comma-separated scopes (${SCOPES.join(', ')})`)
      .option('--workspace <dir>', 'bind the key to this workspace root')
      .option('--tier <name>', 'rate-limit tier (default: default)'),
  ).action(async (flags: CreateFlags) => {
    const { record, key } = await store(flags).create({
      client: flags.client,
      scopes: parseScopes(flags.scopes),
      ...(flags.workspace ? { workspace: flags.workspace } : {}),
      ...(flags.tier ? { tier: flags.tier } : {}),
    });
    out(`Created key ${record.id} for client ${record.client} (scopes ${record.scopes.join(',')}).`);
    out('Store it now: it is not shown again.');
    out(key);
  });

  withFileOptions(keys.command('list').description('list keys (never the keys themselves)')).action(
    (flags: KeysFlags) => {
      const records = store(flags).list();
      if (records.length === 0) return out('No keys.');
      for (const record of records) out(describe(record));
    },
  );

  withFileOptions(
    keys.command('revoke').description('revoke a key by its id').argument('<id>', 'the key id'),
  ).action(async (id: string, flags: KeysFlags) => {
    if (!(await store(flags).revoke(id)))
      throw new Error(`No key with id ${JSON.stringify(id.slice(0, 40))}.`);
    out(`Revoked key ${id}.`);
  });
  return keys;
}

function parseScopes(list: string): Scope[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !isScope(name));
  if (unknown.length > 0)
    throw new Error(`Unknown scope ${JSON.stringify(unknown[0])}: use ${SCOPES.join(', ')}.`);
  return names as Scope[];
}

function describe(record: KeyRecord): string {
  const status = record.revoked ? `revoked ${record.revoked}` : 'active';
  const workspace = record.workspace ? ` workspace=${record.workspace}` : '';
  return `${record.id}  client=${record.client}  scopes=${record.scopes.join(',')}  tier=${record.tier}${workspace}  created=${record.created}  ${status}`;
}
