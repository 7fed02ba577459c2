import cluster from 'node:cluster';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { primaryMessage, sendToPrimary } from './cluster/cluster-messages.js';
import { answerMetricsCollection } from './cluster/cluster-metrics.js';
import { assertClusterSafe, ClusterPrimary, workerCount } from './cluster/cluster-primary.js';
import { WorkerAuditSink } from './cluster/worker-audit-sink.js';
import { loadConfig } from './config/config.loader.js';
import type { BastionConfig } from './config/config.schema.js';
import { assertSafeBind, startHttpServer } from './main.js';
import { VERSION } from './mcp/server-info.js';
import { runStdio } from './mcp/stdio.runner.js';
import { createLogger } from './observability/logger.js';
import { createRuntime, openAudit } from './runtime.js';
import { lockDataDir } from './store/data-dir-lock.js';

// `bastion serve` and `bastion stdio`: the commands that run a server. cli.ts loads this module only for
// them, so the other commands (keys, audit, chat, backup) start without loading the server.

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

function configFrom(flags: ServeFlags, defaults: Record<string, unknown> = {}): BastionConfig {
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

export async function serve(flags: ServeFlags): Promise<void> {
  const config = configFrom(flags);
  if (cluster.isWorker) return serveWorker(config);
  assertSafeBind(config);
  const workers = workerCount(config.server.workers, os.availableParallelism());
  assertClusterSafe(config, workers);
  mkdirSync(path.resolve(config.dataDir), { recursive: true });
  // Held until the process exits: one server (or one primary and its workers) per data directory.
  lockDataDir(config.dataDir);
  if (workers > 1) return servePrimary(config, workers);
  const runtime = await createRuntime(config, { logTo: 'stdout' });
  const server = await startHttpServer(runtime);
  runtime.logger.info({ url: server.url, readOnly: config.workspace.readOnly }, 'bastion serving');
  process.stderr.write(`${servingLine(config, server.url)}\n`);
  onShutdown(config.server.shutdownGraceMs, () => server.close(), runtime.logger);
}

function servingLine(config: BastionConfig, url: string): string {
  const readOnly = config.workspace.readOnly ? ', read-only' : '';
  return `Bastion ${VERSION} serving MCP at ${url} (workspace ${config.workspace.root}${readOnly})`;
}

/**
 * `serve --workers N`: this process forks N workers sharing the port (node:cluster), writes the audit chain
 * for them and restarts the ones that die; it serves no request itself. Config was validated above, so a
 * bad setting fails here, before any fork, exactly as for one process.
 */
async function servePrimary(config: BastionConfig, workers: number): Promise<void> {
  const logger = createLogger({ level: config.log.level, to: 'stdout', pretty: config.log.pretty });
  const audit = await openAudit(config);
  const primary = new ClusterPrimary({
    workers,
    logger,
    audit,
    onServing(url) {
      logger.info({ url, workers, readOnly: config.workspace.readOnly }, 'bastion serving');
      process.stderr.write(`${servingLine(config, url)} with ${workers} workers\n`);
    },
  });
  let signals = 0;
  const stop = (signal: string): void => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      primary.kill();
      logger.flush();
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    primary.shutdown(config.server.shutdownGraceMs);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  primary.start();
  const code = await primary.done;
  await audit.close();
  logger.flush(() => process.exit(code));
}

/** One worker of `serve --workers N`: the ordinary HTTP server, its audit events sent to the primary. */
async function serveWorker(config: BastionConfig): Promise<void> {
  const runtime = await createRuntime(config, { logTo: 'stdout', audit: new WorkerAuditSink() });
  answerMetricsCollection();
  const server = await startHttpServer(runtime);
  runtime.logger.info({ url: server.url, pid: process.pid }, 'worker serving');
  const drain = onShutdown(config.server.shutdownGraceMs, () => server.close(), runtime.logger);
  process.on('message', (raw: unknown) => {
    if (primaryMessage(raw)?.type === 'bastion:shutdown') drain('primary');
  });
  // Without its primary a worker holds no listening socket: it finishes what it has and exits.
  process.on('disconnect', () => drain('primary gone'));
  sendToPrimary({ type: 'bastion:ready', url: server.url });
}

/**
 * A stdio server is started by a desktop client in whatever directory it chooses (often the user's project
 * or /), so its state (the audit log) goes to the user's state directory unless a data directory is set.
 */
const STDIO_DEFAULTS = { dataDir: path.join(os.homedir(), '.local', 'state', 'bastion') };

export async function stdio(flags: CommonFlags): Promise<void> {
  const config = configFrom(flags, STDIO_DEFAULTS);
  const runtime = await createRuntime(config, { logTo: 'stderr' });
  const handle = runStdio(runtime);
  onShutdown(
    config.server.shutdownGraceMs,
    async () => {
      await handle.close();
      runtime.surface.watcher.close();
      await runtime.close();
      return true;
    },
    runtime.logger,
  );
}

/**
 * SIGINT/SIGTERM: drain (close reports whether everything in flight finished within the grace period),
 * flush the logs, exit 0, or 1 if work was cut short. A second signal exits at once.
 */
function onShutdown(
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
