import type { Logger } from 'pino';
import { loadConfig } from './config/config.loader.js';
import type { BastionConfig } from './config/config.schema.js';

// What `bastion serve` (serving.ts) and `bastion stdio` (stdio-serving.ts) share. cli.ts loads each command's
// module only when it runs, so stdio never loads the HTTP stack and the other commands load no server.

export interface CommonFlags {
  workspace?: string;
  config?: string;
  readOnly?: boolean;
  dataDir?: string;
}

export interface ServeFlags extends CommonFlags {
  host?: string;
  port?: string;
  workers?: string;
}

export function configFrom(flags: ServeFlags, defaults: Record<string, unknown> = {}): BastionConfig {
  return loadConfig({
    ...(flags.config ? { file: flags.config } : {}),
    defaults,
    overrides: {
      'server.host': flags.host,
      'server.port': flags.port,
      'server.workers': flags.workers,
      'workspace.root': flags.workspace,
      'workspace.readOnly': flags.readOnly ? true : undefined,
      dataDir: flags.dataDir,
    },
  });
}

/**
 * SIGINT/SIGTERM: drain (close reports whether everything in flight finished within the grace period),
 * flush the logs, exit 0, or 1 if work was cut short. A second signal exits at once.
 */
export function onShutdown(
  graceMs: number,
  close: () => Promise<boolean>,
  logger: Logger,
): (reason: string) => void {
  let closing = false;
  const stop = (signal: string, fromSignal = true): void => {
    if (closing) {
      // A repeated request from the primary is the same request; only a second signal means "now".
      if (!fromSignal) return;
      logger.warn({ signal }, 'second signal: exiting now');
      logger.flush();
      process.exit(1);
    }
    closing = true;
    logger.info({ signal }, 'shutting down');
    // A backstop in case closing itself hangs: the drain has its own deadline.
    setTimeout(() => process.exit(1), graceMs + 5_000).unref();
    close().then(
      (clean) => logger.flush(() => process.exit(clean ? 0 : 1)),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        logger.flush(() => process.exit(1));
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return (reason) => stop(reason, false);
}
