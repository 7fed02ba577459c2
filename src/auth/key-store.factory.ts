import type { Cluster, Redis } from 'ioredis';
import type { BastionConfig } from '../config/config.schema.js';
import { keysFilePath } from './key-store.js';
import { KeyStore, type ApiKeyStore } from './key-store.js';
import { RedisKeyStore } from './key-store.redis.js';

/**
 * The store `auth.keyStore` names: the keys file on this machine, or Redis shared by every instance. A
 * server's Redis store listens for changes made elsewhere (`watch`); the CLI's only reads and writes.
 */
export function openKeyStore(
  config: BastionConfig,
  redis: Redis | Cluster | undefined,
  options: { watch: boolean },
): ApiKeyStore {
  if (config.auth.keyStore === 'file') return new KeyStore(keysFilePath(config));
  // Config validation requires redis.url for the redis key store, so the connection exists.
  if (!redis || redis.isCluster)
    throw new Error('The redis key store needs one Redis server (not a Cluster).');
  const store = new RedisKeyStore(redis as Redis);
  return options.watch ? store.watch() : store;
}
