import { SECRET_KEYS, type BastionConfig } from '../config/config.schema.js';
import type { UpstreamConfig } from '../config/upstreams.schema.js';
import type { UpstreamStatus } from '../gateway/upstream.js';
import { maskUrls } from '../observability/secret-redaction.js';
import { VERSION } from '../mcp/server-info.js';
import type { Runtime } from '../runtime.js';
import type { Lifecycle } from './lifecycle.js';

export interface DiagnosticsReport {
  version: string;
  uptimeSec: number;
  startedAt: string;
  build: { node: string; platform: string; arch: string; pid: number };
  state: string;
  inFlight: number;
  checks: Record<string, unknown>;
  stores: Record<string, { kind: string; status?: string }>;
  providers: Array<{ name: string; status: string }>;
  circuitBreakers: Array<{ name: string; state: string }>;
  upstreams: UpstreamStatus[];
  config: Record<string, unknown>;
}

const MASK = '[masked]';

/** Builds the /diagnostics report. Config secrets are replaced by a mask; a secret never leaves here. */
export class Diagnostics {
  private readonly startedAt = new Date();

  constructor(
    private readonly runtime: Runtime,
    private readonly lifecycle: Lifecycle,
    private readonly checks: () => Promise<Record<string, unknown>>,
  ) {}

  /** The configured default provider and every provider used since start, with its circuit breaker. */
  private agentStatus(): Pick<DiagnosticsReport, 'providers' | 'circuitBreakers'> {
    const { agent, config } = this.runtime;
    if (!agent) return { providers: [], circuitBreakers: [] };
    const used = agent.router.status();
    const names = new Set([config.agent.provider, ...config.agent.routes.flatMap((r) => r.provider ?? [])]);
    return {
      providers: [...names].map((name) => ({
        name,
        status: used.some((p) => p.name === name) ? 'used' : 'configured',
      })),
      circuitBreakers: used
        .filter((p) => p.name !== 'rules')
        .map((p) => ({ name: p.name, state: p.circuit })),
    };
  }

  async report(): Promise<DiagnosticsReport> {
    const { config } = this.runtime;
    const checks = await this.checks();
    return {
      version: VERSION,
      uptimeSec: Math.round(process.uptime()),
      startedAt: this.startedAt.toISOString(),
      build: { node: process.version, platform: process.platform, arch: process.arch, pid: process.pid },
      state: this.lifecycle.state,
      inFlight: this.lifecycle.inFlight,
      checks,
      stores: {
        rateLimit: {
          kind: config.rateLimit.enabled ? config.rateLimit.storage : 'off',
          ...(config.rateLimit.storage === 'redis' && { status: statusOf(checks.redis) }),
        },
        audit: { kind: config.audit.enabled ? 'file' : 'off' },
        conversations: {
          kind: this.runtime.agent ? this.runtime.agent.store.kind : 'off',
          ...(this.runtime.agent && { status: statusOf(checks.conversations) }),
        },
      },
      ...this.agentStatus(),
      upstreams: this.runtime.gateway.status(),
      config: maskSecrets(config),
    };
  }
}

/** A copy of the config with every secret key's value replaced by a mask. */
export function maskSecrets(config: BastionConfig): Record<string, unknown> {
  const copy = structuredClone(config) as Record<string, unknown>;
  for (const key of SECRET_KEYS) {
    const parts = key.split('.');
    const parent = parts
      .slice(0, -1)
      .reduce<Record<string, unknown> | undefined>(
        (node, part) => node?.[part] as Record<string, unknown> | undefined,
        copy,
      );
    const leaf = parts.at(-1) as string;
    if (parent && parent[leaf] !== undefined) parent[leaf] = MASK;
  }
  copy.upstreams = config.upstreams.map(maskUpstream);
  return copy;
}

/**
 * An upstream's config without its secrets: the values of its env and headers (names are kept), and the
 * credentials and query of any URL in its url and args (a database URL with a password, a token parameter).
 */
function maskUpstream(upstream: UpstreamConfig): Record<string, unknown> {
  const masked = (values: Record<string, string>) =>
    Object.fromEntries(Object.keys(values).map((name) => [name, MASK]));
  return {
    ...upstream,
    args: upstream.args.map(maskUrls),
    env: masked(upstream.env),
    headers: masked(upstream.headers),
    ...(upstream.url && { url: maskUrls(upstream.url) }),
  };
}

function statusOf(check: unknown): string {
  return (check as { status?: string } | undefined)?.status === 'up' ? 'ok' : 'unreachable';
}
