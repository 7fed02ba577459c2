import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { BastionConfig } from './config/config.schema.js';
import { workspaceMethods } from './mcp/mcp-methods.js';
import type { McpSurface } from './mcp/mcp-server.factory.js';
import { VERSION } from './mcp/server-info.js';
import { auditFilePath, FileAuditSink, NullAuditSink, type AuditSink } from './observability/audit-log.js';
import { observeCalls } from './observability/call-observers.js';
import { createLogger } from './observability/logger.js';
import { discardedMetrics } from './observability/discarded-metrics.js';
import type { Metrics } from './observability/metrics.js';
import { Tracing } from './observability/tracing.js';
import type { ApiKeyStore } from './auth/key-store.js';
import { openKeyStore } from './auth/key-store.factory.js';
import { assembleAgent, type AgentParts } from './agent/agent.assembly.js';
import { purgeEvery } from './conversations/conversation-retention.js';
import { createConversationStore } from './conversations/conversation.store.factory.js';
import { Gateway } from './gateway/gateway.js';
import { ToolRegistry } from './tools/tool-registry.js';
import { FileWatcher } from './workspace/file-watcher.js';
import { Sandbox } from './workspace/sandbox.js';
import { SandboxPool } from './workspace/sandbox-pool.js';
import { completionOperation, WORKSPACE_PROMPTS } from './workspace/workspace.prompts.js';
import { resourceOperations, WORKSPACE_TEMPLATES } from './workspace/workspace.resources.js';
import { workspaceTools } from './workspace/workspace.tools.js';

/** Injection token for the Runtime in the HTTP application. */
export const RUNTIME = Symbol('bastion:runtime');

/** What both transports serve: built once at start from validated config. */
export interface Runtime {
  config: BastionConfig;
  logger: Logger;
  /** The shared workspace. */
  sandbox: Sandbox;
  /** The workspace of each principal: the shared one, or the root its credential is bound to. */
  sandboxes: SandboxPool;
  surface: McpSurface;
  metrics: Metrics;
  audit: AuditSink;
  tracing: Tracing;
  /** The shared Redis connection, when one is configured: one server (or Sentinel's primary), or a Cluster,
   * which only the rate-limit counters accept (config validation refuses it for the other stores). */
  redis?: Redis | Cluster;
  /** The API keys, in api-key mode: the keys file or Redis (auth.keyStore). */
  keys?: ApiKeyStore;
  /** The SecureAgent and the conversations, unless agent.enabled is off. */
  agent?: AgentParts;
  /** The upstream MCP servers whose tools join the registry (none unless configured). */
  gateway: Gateway;
  /** Flushes the audit log and the traces and closes the connections, after the transports have stopped. */
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Where logs go: stdout for HTTP, stderr for stdio. Ignored when `logger` is given. */
  logTo?: 'stdout' | 'stderr';
  logger?: Logger;
  /** Where audit events go instead of the configured file (a cluster worker hands them to the primary). */
  audit?: AuditSink;
  /** False where nothing can read them (stdio): prom-client is then not loaded. */
  metrics?: boolean;
}

export async function createRuntime(config: BastionConfig, options: RuntimeOptions = {}): Promise<Runtime> {
  const tracing = await Tracing.start({
    ...(config.tracing.otlpEndpoint && { endpoint: config.tracing.otlpEndpoint }),
    serviceName: config.tracing.serviceName,
    serviceVersion: VERSION,
    headers: parseHeaders(config.tracing.otlpHeaders),
  });
  const logger =
    options.logger ??
    createLogger({
      level: config.log.level,
      to: options.logTo ?? 'stderr',
      pretty: config.log.pretty,
      ...(tracing.enabled && { mixin: () => traceFields(tracing) }),
    });
  const sandbox = await Sandbox.create({ ...config.workspace, createRoot: true });
  const { denyPatterns, limits, readOnly } = config.workspace;
  const sandboxes = new SandboxPool(sandbox, { denyPatterns, limits, readOnly });
  const watcher = new FileWatcher();
  const registry = new ToolRegistry(workspaceTools, config.workspace.limits.maxResponseBytes, tracing, {
    prompts: WORKSPACE_PROMPTS,
    templates: WORKSPACE_TEMPLATES,
    operations: [...resourceOperations(watcher), completionOperation],
  });
  const metrics = options.metrics === false ? discardedMetrics() : await prometheusMetrics();
  const audit = options.audit ?? (await openAudit(config));
  observeCalls(registry, { metrics, audit, logger });
  const redis = await openRedis(config, logger);
  const keys = config.auth.mode === 'api-key' ? openKeyStore(config, redis, { watch: true }) : undefined;
  const agent = config.agent.enabled
    ? assembleAgent(config, registry, createConversationStore(config, redis), { metrics, audit, logger })
    : undefined;
  const { maxResponseBytes } = config.workspace.limits;
  const gateway = await Gateway.open(config.upstreams, { registry, logger, metrics, maxResponseBytes });
  gateway.start();
  const stopPurge = agent
    ? purgeEvery(agent.store, config.conversations.purgeIntervalMs, logger)
    : () => undefined;
  return {
    config,
    logger,
    sandbox,
    sandboxes,
    surface: { registry, methods: workspaceMethods(registry), watcher, dynamicTools: gateway.size > 0 },
    metrics,
    audit,
    tracing,
    ...(redis && { redis }),
    ...(keys && { keys }),
    ...(agent && { agent }),
    gateway,
    async close() {
      stopPurge();
      await gateway.close();
      await keys?.close();
      await agent?.store.close();
      await audit.close();
      await tracing.shutdown();
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The Prometheus series (/metrics reads them); prom-client is loaded only here. */
async function prometheusMetrics(): Promise<Metrics> {
  const { Metrics } = await import('./observability/metrics.js');
  return new Metrics();
}

/** The shared Redis connection, when one is configured (ioredis is loaded only then). */
async function openRedis(config: BastionConfig, logger: Logger): Promise<Redis | Cluster | undefined> {
  const { cluster, url, sentinels } = config.redis;
  if (!cluster && !url && !sentinels) return undefined;
  const { connectRedis, connectRedisCluster } = await import('./store/redis-connection.js');
  return cluster ? connectRedisCluster(config.redis, logger) : connectRedis(config.redis, logger);
}

/** The configured audit sink: the hash-chained file, or nothing when audit.enabled is off. */
export function openAudit(config: BastionConfig): Promise<AuditSink> {
  if (!config.audit.enabled) return Promise.resolve(new NullAuditSink());
  const { maxBytes, keep } = config.audit;
  return FileAuditSink.open(auditFilePath(config), { maxBytes, keep });
}

function traceFields(tracing: Tracing): Record<string, unknown> {
  const traceId = tracing.traceId();
  return traceId ? { trace_id: traceId } : {};
}

/** OTEL_EXPORTER_OTLP_HEADERS: `key=value,key=value`, values URL-encoded (OpenTelemetry's format). */
function parseHeaders(value: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    headers[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}
