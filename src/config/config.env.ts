/**
 * The BASTION_* variables and the config key each one sets. Only these are read;
 * an unknown BASTION_* variable is a configuration error (a typo would otherwise be silently ignored).
 */
export const ENV_KEYS: Readonly<Record<string, string>> = {
  BASTION_HOST: 'server.host',
  BASTION_PORT: 'server.port',
  BASTION_BODY_LIMIT_BYTES: 'server.bodyLimitBytes',
  BASTION_ALLOWED_ORIGINS: 'server.allowedOrigins',
  BASTION_ALLOWED_HOSTS: 'server.allowedHosts',
  BASTION_REQUEST_TIMEOUT_MS: 'server.requestTimeoutMs',
  BASTION_SHUTDOWN_GRACE_MS: 'server.shutdownGraceMs',
  BASTION_PUBLIC_URL: 'server.publicUrl',
  BASTION_AUTH: 'auth.mode',
  BASTION_KEYS_FILE: 'auth.keysFile',
  BASTION_OAUTH_ISSUER: 'auth.oauth.issuer',
  BASTION_OAUTH_JWKS_URL: 'auth.oauth.jwksUrl',
  BASTION_OAUTH_AUDIENCE: 'auth.oauth.audience',
  BASTION_OAUTH_ALGORITHMS: 'auth.oauth.algorithms',
  BASTION_WORKSPACE: 'workspace.root',
  BASTION_READ_ONLY: 'workspace.readOnly',
  BASTION_DENY_PATTERNS: 'workspace.denyPatterns',
  BASTION_MAX_FILE_BYTES: 'workspace.limits.maxFileBytes',
  BASTION_MAX_RESPONSE_BYTES: 'workspace.limits.maxResponseBytes',
  BASTION_MAX_WRITE_BYTES: 'workspace.limits.maxWriteBytes',
  BASTION_MAX_LIST_ENTRIES: 'workspace.limits.maxListEntries',
  BASTION_MAX_WALK_ENTRIES: 'workspace.limits.maxWalkEntries',
  BASTION_MAX_DEPTH: 'workspace.limits.maxDepth',
  BASTION_SEARCH_TIME_MS: 'workspace.limits.searchTimeMs',
  BASTION_MAX_MATCHES: 'workspace.limits.maxMatches',
  BASTION_DATA_DIR: 'dataDir',
  BASTION_MIN_FREE_DISK_BYTES: 'health.minFreeDiskBytes',
  BASTION_MAX_HEAP_BYTES: 'health.maxHeapBytes',
  BASTION_LOG_LEVEL: 'log.level',
  BASTION_LOG_PRETTY: 'log.pretty',
  BASTION_TRUST_PROXY: 'server.trustProxy',
  BASTION_MAX_HEADER_BYTES: 'server.maxHeaderBytes',
  BASTION_REDIS_URL: 'redis.url',
  BASTION_RATE_LIMIT_ENABLED: 'rateLimit.enabled',
  BASTION_RATE_LIMIT_STORAGE: 'rateLimit.storage',
  BASTION_RATE_LIMIT_WINDOW_MS: 'rateLimit.windowMs',
  BASTION_RATE_LIMIT_PER_IP: 'rateLimit.perIp',
  BASTION_METRICS_ENABLED: 'metrics.enabled',
  BASTION_METRICS_TOKEN: 'metrics.token',
  BASTION_AUDIT_ENABLED: 'audit.enabled',
  BASTION_AUDIT_FILE: 'audit.file',
  BASTION_DOCS_ENABLED: 'docs.enabled',
  BASTION_DOCS_PUBLIC: 'docs.public',
  BASTION_AGENT_ENABLED: 'agent.enabled',
  BASTION_AGENT_PROVIDER: 'agent.provider',
  BASTION_AGENT_MODEL: 'agent.model',
  BASTION_AGENT_MAX_STEPS: 'agent.limits.maxSteps',
  BASTION_AGENT_MAX_TOOL_CALLS: 'agent.limits.maxToolCalls',
  BASTION_AGENT_TURN_TIME_MS: 'agent.limits.turnTimeMs',
  BASTION_AGENT_TIMEOUT_MS: 'agent.resilience.timeoutMs',
  BASTION_AGENT_RETRIES: 'agent.resilience.retries',
  BASTION_ANTHROPIC_MODEL: 'agent.anthropic.model',
  BASTION_OPENAI_MODEL: 'agent.openai.model',
  BASTION_STORE: 'conversations.store',
  BASTION_CONVERSATION_RETENTION_DAYS: 'conversations.retentionDays',
};

/** Standard variables of other specifications that Bastion honours, and the config key each one sets. */
export const STANDARD_ENV_KEYS: Readonly<Record<string, string>> = {
  OTEL_EXPORTER_OTLP_ENDPOINT: 'tracing.otlpEndpoint',
  OTEL_EXPORTER_OTLP_HEADERS: 'tracing.otlpHeaders',
  OTEL_SERVICE_NAME: 'tracing.serviceName',
  ANTHROPIC_API_KEY: 'agent.anthropic.apiKey',
  ANTHROPIC_BASE_URL: 'agent.anthropic.baseUrl',
  OPENAI_API_KEY: 'agent.openai.apiKey',
  OPENAI_BASE_URL: 'agent.openai.baseUrl',
};

/** Variables read by the loader itself rather than mapped onto a key. */
export const LOADER_ENV = ['BASTION_CONFIG'] as const;

/** Variables of Bastion's client commands (`bastion chat`): not server config, so the loader leaves them be. */
export const CLIENT_ENV = ['BASTION_URL', 'BASTION_API_KEY'] as const;
