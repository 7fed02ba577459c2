import type { Logger } from 'pino';
import type { ConversationStore } from './conversation.store.js';

/**
 * Purges expired conversations now and then. Reads never return an expired conversation anyway; purging
 * is what makes the data actually leave the disk.
 */
export function purgeEvery(store: ConversationStore, intervalMs: number, logger: Logger): () => void {
  const purge = (): void => {
    store.purgeExpired().then(
      (count) => {
        if (count > 0) logger.info({ count }, 'expired conversations purged');
      },
      (error: unknown) => logger.warn({ err: error }, 'conversation purge failed'),
    );
  };
  purge();
  const timer = setInterval(purge, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
