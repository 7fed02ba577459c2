import path from 'node:path';
import { Command, Option } from 'commander';
import type { Redis } from 'ioredis';
import pino from 'pino';
import type { BastionConfig } from '../config/config.schema.js';
import { keysFilePath } from './key-store.js';
import { KeyStore, KeyStoreError, type ApiKeyStore, type KeyRecord } from './key-store.js';
import { RedisKeyStore } from './key-store.redis.js';
import { isScope, SCOPE_NAMES, type Scope } from './principal.js';

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

const CONNECT_TIMEOUT_MS = 5_000;

/** `bastion keys create|list|revoke|import`: API keys, kept hashed in the keys file or in Redis. */
export function keysCommand(loadConfig: (flags: KeysFlags) => BastionConfig, out: Out): Command {
  const withStore = <T>(flags: KeysFlags, use: (store: ApiKeyStore) => Promise<T>): Promise<T> =>
    usingStore(loadConfig(flags), use);
  const withFileOptions = (command: Command): Command =>
    command
      .addOption(
        new Option('--keys-file <file>', 'keys file (BASTION_KEYS_FILE; default <data-dir>/keys.json)'),
      )
      .addOption(
        new Option('--data-dir <dir>', 'directory for Bastion state (BASTION_DATA_DIR; default ./data)'),
      )
      .addOption(new Option('--config <file>', 'config file, JSON or YAML (BASTION_CONFIG)'));

  const keys = new Command('keys').description('create, list and revoke API keys (BASTION_KEY_STORE)');
  withFileOptions(
    keys
      .command('create')
      .description('create a key and print it once, alone on the last line')
      .requiredOption('--client <name>', 'the client this key identifies')
      .requiredOption('--scopes <list>', `comma-separated scopes (${SCOPE_NAMES})`)
      .option('--workspace <dir>', 'bind the key to this workspace root')
      .option('--tier <name>', 'rate-limit tier (default: default)'),
  ).action(async (flags: CreateFlags) => {
    const spec = {
      client: flags.client,
      scopes: parseScopes(flags.scopes),
      ...(flags.workspace ? { workspace: flags.workspace } : {}),
      ...(flags.tier ? { tier: flags.tier } : {}),
    };
    const { record, key } = await withStore(flags, (store) => store.create(spec));
    out(`Created key ${record.id} for client ${record.client} (scopes ${record.scopes.join(',')}).`);
    out('Store it now: it is not shown again.');
    out(key);
  });

  withFileOptions(keys.command('list').description('list keys (never the keys themselves)')).action(
    async (flags: KeysFlags) => {
      const records = await withStore(flags, async (store) => store.list());
      if (records.length === 0) return out('No keys.');
      for (const record of records) out(describe(record));
    },
  );

  withFileOptions(
    keys.command('revoke').description('revoke a key by its id').argument('<id>', 'the key id'),
  ).action(async (id: string, flags: KeysFlags) => {
    if (!(await withStore(flags, (store) => store.revoke(id))))
      throw new Error(`No key with id ${JSON.stringify(id.slice(0, 40))}.`);
    out(`Revoked key ${id}.`);
  });

  withFileOptions(
    keys
      .command('import')
      .description('copy the keys of a keys file into Redis (BASTION_KEY_STORE=redis)')
      .requiredOption('--from <file>', 'the keys file to copy (keys.json)'),
  ).action(async (flags: KeysFlags & { from: string }) => {
    const records = new KeyStore(path.resolve(flags.from)).list();
    const added = await withStore(flags, async (store) => {
      if (!(store instanceof RedisKeyStore))
        throw new Error('import copies a keys file into Redis: set BASTION_KEY_STORE=redis.');
      let count = 0;
      for (const record of records) if (await store.add(record)) count++;
      return count;
    });
    const skipped = records.length - added;
    out(`Imported ${added} key(s)${skipped ? `; ${skipped} already in Redis, left as they are` : ''}.`);
  });
  return keys;
}

/** Runs `use` on the configured store; a Redis store gets a connection of its own, closed afterwards. */
async function usingStore<T>(config: BastionConfig, use: (store: ApiKeyStore) => Promise<T>): Promise<T> {
  if (config.auth.keyStore === 'file') return use(new KeyStore(keysFilePath(config)));
  // Config validation requires Redis (a url or sentinels) for the redis key store. ioredis is loaded only
  // then: the keys file needs none of it.
  const { connectRedis } = await import('../store/redis-connection.js');
  const redis = connectRedis(config.redis, pino({ level: 'silent' }));
  try {
    await connected(redis, CONNECT_TIMEOUT_MS);
    return await use(new RedisKeyStore(redis));
  } finally {
    redis.disconnect();
  }
}

function parseScopes(list: string): Scope[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !isScope(name));
  if (unknown.length > 0) throw new Error(`Unknown scope ${JSON.stringify(unknown[0])}: use ${SCOPE_NAMES}.`);
  return names as Scope[];
}

function describe(record: KeyRecord): string {
  const status = record.revoked ? `revoked ${record.revoked}` : 'active';
  const workspace = record.workspace ? ` workspace=${record.workspace}` : '';
  return `${record.id}  client=${record.client}  scopes=${record.scopes.join(',')}  tier=${record.tier}${workspace}  created=${record.created}  ${status}`;
}

/** Resolves once Redis is ready; a command sent before that would fail (no offline queue). */
function connected(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', ready);
      // The URL may carry a password: the message names the setting, not its value.
      reject(
        new KeyStoreError('redis_unreachable', 'Redis (redis.url, BASTION_REDIS_URL) cannot be reached.'),
      );
    }, timeoutMs);
    const ready = (): void => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', ready);
  });
}
