import cluster from 'node:cluster';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { primaryMessage, sendToPrimary } from './cluster/cluster-messages.js';
import { answerMetricsCollection } from './cluster/cluster-metrics.js';
import { assertClusterSafe, ClusterPrimary, workerCount } from './cluster/cluster-primary.js';
import { WorkerAuditSink } from './cluster/worker-audit-sink.js';
import type { BastionConfig } from './config/config.schema.js';
import { assertSafeBind, startHttpServer } from './main.js';
import { VERSION } from './mcp/server-info.js';
import { createLogger } from './observability/logger.js';
import { createRuntime, openAudit } from './runtime.js';
import { configFrom, onShutdown, type ServeFlags } from './serving-common.js';
import { lockDataDir } from './store/data-dir-lock.js';

// `bastion serve`: MCP over Streamable HTTP, one process or a primary and its workers.

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
