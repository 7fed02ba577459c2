import pino from 'pino';
import type { UpstreamConfig } from '../config/upstreams.schema.js';
import { maskUrls } from '../observability/secret-redaction.js';
import { failureDetail } from './upstream-errors.js';
import { messageLimit, UpstreamConnection, type UpstreamServer } from './upstream-connection.js';
import { upstreamTools, type SkippedTool } from './upstream-tools.js';

/** What one connection attempt to an upstream found. */
export interface UpstreamProbe {
  name: string;
  /** The command line or URL, credentials masked. */
  target: string;
  scope: string;
  enabled: boolean;
  ok: boolean;
  connectMs?: number;
  pingMs?: number;
  server?: UpstreamServer;
  /** The tools Bastion would offer, with their prefix. */
  tools?: string[];
  skipped?: SkippedTool[];
  /** Tools not offered because a Bastion tool or an earlier upstream has the name. */
  clashes?: string[];
  /** For the operator's terminal: the upstream's own words in it are printable, redacted and cut short. */
  error?: string;
}

/**
 * Connects to an upstream once as Bastion would (same transport, environment, headers and limits), lists its
 * tools and pings it, then disconnects. `taken` holds the tool names already offered; this upstream's are added.
 */
export async function probeUpstream(
  config: UpstreamConfig,
  options: { maxResponseBytes: number; taken: Set<string> },
): Promise<UpstreamProbe> {
  const target =
    config.type === 'http'
      ? maskUrls(config.url as string)
      : [config.command as string, ...config.args].map(maskUrls).join(' ');
  const probe: UpstreamProbe = {
    name: config.name,
    target,
    scope: config.scope,
    enabled: config.enabled,
    ok: false,
  };
  if (!config.enabled) return probe;
  const started = performance.now();
  let connection: UpstreamConnection | undefined;
  try {
    connection = await UpstreamConnection.open(config, {
      logger: pino({ level: 'silent' }),
      maxMessageBytes: messageLimit(options.maxResponseBytes),
      timeoutMs: config.timeoutMs,
    });
    probe.connectMs = Math.round(performance.now() - started);
    const server = connection.server;
    if (server) probe.server = server;
    const listed = await connection.listTools(config.timeoutMs);
    const pinged = performance.now();
    await connection.ping(config.timeoutMs);
    probe.pingMs = Math.round(performance.now() - pinged);
    const { tools, skipped } = upstreamTools(config, listed, unused, () => true);
    probe.tools = tools.map((t) => t.name).filter((name) => !options.taken.has(name));
    probe.clashes = tools.map((t) => t.name).filter((name) => options.taken.has(name));
    probe.skipped = skipped;
    for (const name of probe.tools) options.taken.add(name);
    probe.ok = true;
  } catch (error) {
    probe.error = failureDetail(error);
  } finally {
    await connection?.close();
  }
  return probe;
}

function unused(): never {
  throw new Error('A probe calls no tool.');
}
