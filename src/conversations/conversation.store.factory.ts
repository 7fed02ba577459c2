import path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { BastionConfig } from '../config/config.schema.js';
import type { ConversationStore } from './conversation.store.js';
import { RedisConversationStore } from './conversation.store.redis.js';
import { SqliteConversationStore } from './conversation.store.sqlite.js';

const DAY_MS = 86_400_000;

/** The SQLite file: conversations.db under the data directory. */
export function conversationsFilePath(config: BastionConfig): string {
  return path.resolve(config.dataDir, 'conversations.db');
}

/** The store `conversations.store` names: SQLite on this machine, or Redis shared by every instance. */
export function createConversationStore(
  config: BastionConfig,
  redis: Redis | Cluster | undefined,
): ConversationStore {
  const retentionMs = config.conversations.retentionDays * DAY_MS;
  if (config.conversations.store === 'redis') {
    // Config validation requires redis.url for the redis store, so the connection exists.
    if (!redis || redis.isCluster)
      throw new Error('The redis conversation store needs one Redis server (not a Cluster).');
    return new RedisConversationStore(redis as Redis, { retentionMs });
  }
  return SqliteConversationStore.open(conversationsFilePath(config), { retentionMs });
}
