import { isIP } from 'node:net';
import { z } from 'zod';
import { isScope, SCOPE_NAMES } from '../auth/principal.js';
import { upstreamsSchema } from './upstreams.schema.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Globs hidden from every listing and refused by every tool, unless the operator replaces the list. */
export const DEFAULT_DENY_PATTERNS = ['**/.git', '**/.env*', '**/*.pem', '**/*.key', '**/id_rsa*'];

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z.preprocess((value) => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  return value;
}, z.boolean());
/** proxy-addr's names for address ranges, accepted beside addresses and CIDRs. */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];
const isProxyAddress = (entry: string): boolean => {
  const [address = '', bits, extra] = entry.split('/');
  if (extra !== undefined) return false;
  if (bits === undefined) return isIP(address) !== 0 || PROXY_RANGE_NAMES.includes(address);
  const max = isIP(address) === 4 ? 32 : isIP(address) === 6 ? 128 : -1;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
};
/**
 * Which proxies to believe about the client address: false (none), true (every hop: only when the proxy
 * replaces X-Forwarded-For), a hop count (the address that many proxies back), or addresses and CIDRs.
 */
const trustProxy = z.preprocess(
  (value) => {
    if (typeof value !== 'string') return value;
    const v = value.trim().toLowerCase();
    if (/^\d+$/.test(v)) return Number(v) === 0 ? false : Number(v);
    if (['true', 'yes', 'on'].includes(v)) return true;
    if (['false', 'no', 'off', ''].includes(v)) return false;
    return v.split(',').map((entry) => entry.trim());
  },
  z.union([
    z.boolean(),
    z.number().int().positive(),
    z
      .array(
        z
          .string()
          .refine(isProxyAddress, 'expected an IP address, a CIDR, loopback, linklocal or uniquelocal'),
      )
      .min(1),
  ]),
);
const providerName = z.enum(['rules', 'anthropic', 'openai']);
/** A Redis node as host:port; IPv6 hosts in brackets. */
const redisNode = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'expected host:port');
const stringList = z.preprocess(
  (value) =>
    typeof value === 'string'
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : value,
  z.array(z.string()),
);

export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(3000),
        /** Largest accepted request body; larger bodies get 413 before parsing. */
        bodyLimitBytes: positiveInt.default(4 * MiB),
        /** Browser origins allowed to call /mcp (DNS-rebinding rule); requests without Origin always pass. */
        allowedOrigins: stringList.default([]),
        /** Host header values accepted in addition to the bind address and the loopback names. */
        allowedHosts: stringList.default([]),
        /** Time allowed for a request before it is aborted. */
        requestTimeoutMs: positiveInt.default(120_000),
        /** Time given to in-flight requests on shutdown before the process exits. */
        shutdownGraceMs: positiveInt.default(10_000),
        /** The URL clients reach this server at (behind a proxy, its public origin); defaults to the bind address. */
        publicUrl: z.url().optional(),
        /** Behind a reverse proxy: take the client address from X-Forwarded-For (per-IP limits, logs). */
        trustProxy: trustProxy.default(false),
        /** Largest request head (request line and headers); larger heads get 431. */
        maxHeaderBytes: positiveInt.default(16 * KiB),
        /** `bastion serve` processes sharing the port (node:cluster): a count, or `auto` (one per CPU). */
        workers: z.union([z.literal('auto'), positiveInt.max(256)]).default(1),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        /** `none` is allowed only on a loopback bind. */
        mode: z.enum(['none', 'api-key', 'oauth']).default('none'),
        /** Hashed API keys; defaults to keys.json under the data directory. */
        keysFile: z.string().min(1).optional(),
        /** Where API keys live: the keys file, or Redis so every instance sees every key (needs Redis). */
        keyStore: z.enum(['file', 'redis']).default('file'),
        oauth: z
          .object({
            /** The authorization server's issuer identifier, compared exactly with the token's `iss`. */
            issuer: z.url().optional(),
            /** Where the issuer publishes its signing keys. */
            jwksUrl: z.url().optional(),
            /** The `aud` a token must carry; defaults to this server's resource URL (publicUrl + /mcp). */
            audience: z.string().min(1).optional(),
            algorithms: stringList.default(['RS256', 'PS256', 'ES256', 'EdDSA']),
            clockToleranceSec: z.coerce.number().int().min(0).max(300).default(30),
            /** The claim holding the token's scopes (a space-separated string or an array). */
            scopeClaim: z.string().min(1).default('scope'),
            /** Token scopes to Bastion scopes; a token scope named like a Bastion scope maps to itself. */
            scopeMap: z
              .record(z.string(), z.array(z.string().refine(isScope, `expected ${SCOPE_NAMES}`)))
              .default({}),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    workspace: z
      .object({
        root: z.string().min(1).default('./workspace'),
        readOnly: bool.default(false),
        denyPatterns: stringList.default(DEFAULT_DENY_PATTERNS),
        /** Read regular files with more than one hard link (another link may lie outside the workspace). */
        allowHardLinks: bool.default(false),
        limits: z
          .object({
            /** Largest file a tool reads (checked before reading). */
            maxFileBytes: positiveInt.default(10 * MiB),
            /** Largest tool result, text and structured copies together. */
            maxResponseBytes: positiveInt.default(4 * MiB),
            /** Largest content accepted by write_file and edit_file. */
            maxWriteBytes: positiveInt.default(10 * MiB),
            /** Entries returned by one listing. */
            maxListEntries: positiveInt.default(5_000),
            /** Entries visited by one tree or search walk. */
            maxWalkEntries: positiveInt.default(50_000),
            /** Directory depth a tree or search descends. */
            maxDepth: positiveInt.default(32),
            /** Wall time of one search, tree or grep. */
            searchTimeMs: positiveInt.default(5_000),
            /** Matches returned by search_files and grep_files. */
            maxMatches: positiveInt.default(1_000),
            /** Characters in a glob or regex pattern. */
            maxPatternLength: positiveInt.default(1_024),
            /** Files read by one read_multiple_files call. */
            maxFilesPerRead: positiveInt.default(64),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    dataDir: z.string().min(1).default('./data'),
    /** Shared state for several instances: one server (url), a Sentinel-watched primary, or a Cluster. */
    redis: z
      .object({
        /** redis://[user:password@]host:port[/db], or rediss:// for TLS; a secret when it carries a password. */
        url: z
          .string()
          .regex(/^rediss?:\/\/\S+$/, 'expected a redis:// or rediss:// URL')
          .optional(),
        /** The password (AUTH), so it need not sit in the URL. */
        password: z.string().min(1).optional(),
        /** TLS for a rediss:// URL. */
        tls: z
          .object({
            /** PEM file of the CA that signed the server's certificate; the system CAs otherwise. */
            caFile: z.string().min(1).optional(),
            rejectUnauthorized: bool.default(true),
            /** The name the server's certificate must carry, when it differs from the URL's host. */
            servername: z.string().min(1).optional(),
          })
          .strict()
          .prefault({}),
        /** Sentinels (host:port) to ask for the current primary, instead of a url. */
        sentinels: stringList.pipe(z.array(redisNode).min(1)).optional(),
        /** The master group name the sentinels monitor. */
        sentinelName: z.string().min(1).optional(),
        sentinelPassword: z.string().min(1).optional(),
        /** Redis Cluster seed nodes (host:port), instead of a url; rate-limit counters only. */
        cluster: stringList.pipe(z.array(redisNode).min(1)).optional(),
      })
      .strict()
      .prefault({}),
    rateLimit: z
      .object({
        enabled: bool.default(true),
        /** Where counters live: this process, or Redis so every instance counts together. */
        storage: z.enum(['memory', 'redis']).default('memory'),
        /** The fixed window the request limits count in. */
        windowMs: positiveInt.default(60_000),
        /** Requests per window from one IP address, authenticated or not. */
        perIp: positiveInt.default(6_000),
        /** Limits per principal, by the tier its credential names; unknown tiers get `default`. */
        tiers: z
          .record(
            z.string(),
            z
              .object({
                /** Requests per window. */
                requests: positiveInt,
                /** Requests one principal may have in flight at once (open streams included). */
                maxInFlight: positiveInt,
              })
              .strict(),
          )
          .default({ default: { requests: 3_000, maxInFlight: 32 } }),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        enabled: bool.default(true),
        /** A bearer token that may read /metrics without an API key (for a scraper); a secret. */
        token: z.string().min(16).optional(),
      })
      .strict()
      .prefault({}),
    audit: z
      .object({
        enabled: bool.default(true),
        /** The JSONL audit log; defaults to audit/audit.jsonl under the data directory. */
        file: z.string().min(1).optional(),
        /** The log is rotated above this size. */
        maxBytes: positiveInt.default(50 * MiB),
        /** Rotated files kept. */
        keep: positiveInt.default(10),
      })
      .strict()
      .prefault({}),
    tracing: z
      .object({
        /** OTLP/HTTP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); tracing is off without it. */
        otlpEndpoint: z.url().optional(),
        /** Headers for the collector, `key=value,key=value` (OTEL_EXPORTER_OTLP_HEADERS); a secret. */
        otlpHeaders: z.string().optional(),
        serviceName: z.string().min(1).default('bastion'),
      })
      .strict()
      .prefault({}),
    docs: z
      .object({
        /** Serve the OpenAPI document at /openapi.json and its page at /docs. */
        enabled: bool.default(true),
        /** Serve them without credentials; otherwise they need an authenticated client. */
        public: bool.default(false),
      })
      .strict()
      .prefault({}),
    agent: z
      .object({
        /** Serve the `converse` tool and /v1/conversations. */
        enabled: bool.default(true),
        /** The model provider for every conversation a route below does not send elsewhere. */
        provider: providerName.default('rules'),
        /** The model for the default provider; defaults to that provider's `model`. */
        model: z.string().min(1).optional(),
        /** Largest reply asked of the model per request. */
        maxOutputTokens: positiveInt.default(4_096),
        /** Overrides by who is asking; the first route that matches wins. */
        routes: z
          .array(
            z
              .object({
                /** read-only (no files:write), read-write, or admin. */
                role: z.enum(['read-only', 'read-write', 'admin']).optional(),
                /** The MCP client's name (clientInfo.name), when the transport tells it. */
                client: z.string().min(1).optional(),
                /** A principal id. */
                principal: z.string().min(1).optional(),
                provider: providerName.optional(),
                model: z.string().min(1).optional(),
              })
              .strict(),
          )
          .default([]),
        anthropic: z
          .object({
            /** ANTHROPIC_API_KEY; a secret. */
            apiKey: z.string().min(1).optional(),
            /** ANTHROPIC_BASE_URL: another Messages API endpoint (a gateway). */
            baseUrl: z.url().optional(),
            model: z.string().min(1).default('claude-sonnet-4-6'),
          })
          .strict()
          .prefault({}),
        openai: z
          .object({
            /** OPENAI_API_KEY; a secret. Local servers (Ollama, vLLM, LM Studio) may not need one. */
            apiKey: z.string().min(1).optional(),
            /** OPENAI_BASE_URL: any Chat Completions endpoint, e.g. http://127.0.0.1:11434/v1 for Ollama. */
            baseUrl: z.url().optional(),
            model: z.string().min(1).default('gpt-4.1-mini'),
          })
          .strict()
          .prefault({}),
        /** Per model request: timeout, retries with backoff, and a circuit breaker per provider. */
        resilience: z
          .object({
            timeoutMs: positiveInt.default(60_000),
            /** Retries after the first attempt, on 429, 5xx, 529 and timeouts. */
            retries: z.coerce.number().int().min(0).max(10).default(3),
            retryBaseMs: positiveInt.default(500),
            /** The longest wait between attempts, Retry-After included. */
            retryMaxMs: positiveInt.default(30_000),
            /** Consecutive failed requests that open the circuit. */
            breakerFailures: positiveInt.default(5),
            /** How long an open circuit refuses before letting one request try. */
            breakerHalfOpenMs: positiveInt.default(30_000),
          })
          .strict()
          .prefault({}),
        /** What the Supervisor allows in one turn. */
        limits: z
          .object({
            /** Requests to the model. */
            maxSteps: positiveInt.default(8),
            /** Tool calls proposed (refused ones count too). */
            maxToolCalls: positiveInt.default(16),
            /** Wall time of the turn. */
            turnTimeMs: positiveInt.default(120_000),
            /** Bytes of tool output fed back to the model in the turn, all results together. */
            maxToolOutputBytes: positiveInt.default(64 * KiB),
            /** Bytes of one tool result fed back; the rest is cut with a note. */
            maxResultBytes: positiveInt.default(16 * KiB),
            /** The same call (tool and arguments) this many times in a turn is a loop. */
            maxRepeats: positiveInt.default(2),
            /** Characters in one prompt. */
            maxPromptChars: positiveInt.default(16_000),
            /** Earlier turns given to the model. */
            historyTurns: positiveInt.default(20),
            /** Approximate tokens of earlier turns given to the model. */
            historyTokens: positiveInt.default(24_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    conversations: z
      .object({
        /** sqlite: a file under the data directory; redis: shared by every instance (needs redis.url). */
        store: z.enum(['sqlite', 'redis']).default('sqlite'),
        /** A conversation is erased this long after its last turn. */
        retentionDays: positiveInt.default(30),
        /** How often expired conversations are purged. */
        purgeIntervalMs: positiveInt.default(3_600_000),
        /** How long a prompt waits for the turn before it on the same conversation. */
        lockWaitMs: positiveInt.default(180_000),
      })
      .strict()
      .prefault({}),
    health: z
      .object({
        /** /health/ready fails below this much free space where the workspace lives. */
        minFreeDiskBytes: positiveInt.default(100 * MiB),
        /** /health/ready fails above this heap use; defaults to 90% of V8's heap limit. */
        maxHeapBytes: positiveInt.optional(),
      })
      .strict()
      .prefault({}),
    /** Upstream MCP servers whose tools Bastion offers through its own door (config/mcp.json). */
    upstreams: upstreamsSchema,
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** Human-readable lines instead of JSON: for development only. */
        pretty: bool.default(false),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    checkRedis(config, ctx);
    if (config.auth.keyStore === 'redis' && !config.redis.url && !config.redis.sentinels)
      ctx.addIssue({
        code: 'custom',
        path: ['redis', 'url'],
        message: 'required (or redis.sentinels) when auth.keyStore is redis',
      });
    const providers = [config.agent.provider, ...config.agent.routes.map((r) => r.provider)];
    if (providers.includes('anthropic') && !config.agent.anthropic.apiKey)
      ctx.addIssue({
        code: 'custom',
        path: ['agent', 'anthropic', 'apiKey'],
        message: 'required when the anthropic provider is used (ANTHROPIC_API_KEY)',
      });
    if (providers.includes('openai') && !config.agent.openai.apiKey && !config.agent.openai.baseUrl)
      ctx.addIssue({
        code: 'custom',
        path: ['agent', 'openai', 'apiKey'],
        message: 'required when the openai provider is used without a baseUrl (OPENAI_API_KEY)',
      });
    if (!config.rateLimit.tiers.default)
      ctx.addIssue({
        code: 'custom',
        path: ['rateLimit', 'tiers', 'default'],
        message: 'a default tier is required',
      });
    const { mode, oauth } = config.auth;
    if (mode !== 'oauth') return;
    for (const key of ['issuer', 'jwksUrl'] as const) {
      if (!oauth[key])
        ctx.addIssue({
          code: 'custom',
          path: ['auth', 'oauth', key],
          message: 'required when auth.mode is oauth',
        });
    }
  });

type Issues = { addIssue(issue: { code: 'custom'; path: string[]; message: string }): void };

/** The redis section's combinations: one way to reach Redis, and what each way supports. */
function checkRedis(config: Pick<BastionConfig, 'redis' | 'rateLimit' | 'conversations'>, ctx: Issues): void {
  const { url, password, tls, sentinels, sentinelName, sentinelPassword, cluster } = config.redis;
  const issue = (key: string, message: string) =>
    ctx.addIssue({ code: 'custom', path: ['redis', key], message });
  const ways = [url && 'url', sentinels && 'sentinels', cluster && 'cluster'].filter(Boolean);
  if (ways.length > 1) issue(ways[1] as string, `set one of redis.url, redis.sentinels, redis.cluster`);
  for (const [used, on, or] of [
    [config.rateLimit.storage === 'redis', 'rateLimit.storage', 'redis.sentinels or redis.cluster'],
    [config.conversations.store === 'redis', 'conversations.store', 'redis.sentinels'],
  ] as const) {
    if (used && ways.length === 0) issue('url', `required when ${on} is redis (or ${or})`);
  }
  if (sentinels && !sentinelName) issue('sentinelName', 'required with redis.sentinels');
  if (!sentinels && sentinelName) issue('sentinelName', 'only with redis.sentinels');
  if (!sentinels && sentinelPassword) issue('sentinelPassword', 'only with redis.sentinels');
  if (url && password && /^rediss?:\/\/[^/@]*:[^/@]*@/.test(url))
    issue('password', 'the url carries a password already: set it in one place');
  const tlsSet = tls.caFile !== undefined || tls.servername !== undefined || !tls.rejectUnauthorized;
  if (tlsSet && !url?.startsWith('rediss://')) issue('tls', 'TLS options need a rediss:// url');
  if (cluster && config.conversations.store === 'redis')
    issue(
      'cluster',
      'not supported with conversations.store redis: a conversation write spans keys in several hash ' +
        'slots; use one Redis primary with replicas (redis.url or redis.sentinels)',
    );
}

export type BastionConfig = z.infer<typeof configSchema>;
export type WorkspaceLimits = BastionConfig['workspace']['limits'];
export type AgentConfig = BastionConfig['agent'];
export type ProviderName = AgentConfig['provider'];
export type ConversationsConfig = BastionConfig['conversations'];

/** Config keys whose values are secrets: masked wherever config is shown. */
export const SECRET_KEYS = [
  'redis.url',
  'redis.password',
  'redis.sentinelPassword',
  'metrics.token',
  'tracing.otlpHeaders',
  'agent.anthropic.apiKey',
  'agent.openai.apiKey',
] as const;
