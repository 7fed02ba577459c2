import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import {
  Client,
  ProtocolError,
  ProtocolErrorCode,
  StreamableHTTPClientTransport,
  type CallToolResult,
  type Tool as McpTool,
  type Transport,
} from '@modelcontextprotocol/client';
import type { Logger } from 'pino';
import { printable } from '../common/printable.js';
import type { UpstreamConfig } from '../config/upstreams.schema.js';
import { VERSION } from '../mcp/server-info.js';
import { cappedFetch, ResponseTooLarge } from './capped-fetch.js';
import { StdioTransport } from './stdio-transport.js';

export interface ConnectionOptions {
  logger: Logger;
  /** The largest message accepted from the upstream; a larger one ends the connection. */
  maxMessageBytes: number;
  /** Time the handshake may take. */
  timeoutMs: number;
  /** Told once when the connection ends without close() (the process exited, the transport failed). */
  onClosed?: (reason: string) => void;
  /** Told when the upstream says its tools changed. */
  onToolsChanged?: () => void;
}

/** The server's name, title and version as it reported them, printable and cut short. */
export interface UpstreamServer {
  name: string;
  version: string;
  title?: string;
}

export interface CallOptions {
  signal: AbortSignal;
  timeoutMs: number;
  onprogress?: (progress: { progress: number; total?: number; message?: string }) => void;
}

/**
 * The largest message read from an upstream, for a door that passes results up to `maxResponseBytes`: a
 * result may carry its data twice (text and structuredContent), in a JSON-RPC envelope.
 */
export function messageLimit(maxResponseBytes: number): number {
  return maxResponseBytes * 2 + 64 * 1024;
}

/** Lines of an upstream's stderr kept in the log: enough to see why it failed, not a flood. */
const MAX_STDERR_LINE = 500;
/** A server's name, title or version longer than this is cut. */
const MAX_SERVER_INFO = 200;
const TOO_LARGE = 'sent a message over the size limit';
/** Marks the answer Bastion gives itself for a reply it cut off; unknown to upstreams, so none can forge it. */
const CUT_OFF = randomUUID();

/**
 * One MCP client connected to an upstream: a child process over stdio, or a Streamable HTTP session. The
 * caller's credentials never reach it: it sends only what the upstream's config gives (its env and headers).
 */
export class UpstreamConnection {
  /** Calls waiting for an answer on this connection. */
  inFlight = 0;
  private closing = false;
  private closeReason?: string;

  private constructor(
    private readonly client: Client,
    private readonly transport: Transport,
    private readonly maxMessageBytes: number,
  ) {}

  static async open(config: UpstreamConfig, options: ConnectionOptions): Promise<UpstreamConnection> {
    const transport = createTransport(config, options);
    const client = new Client(
      { name: 'bastion', version: VERSION },
      {
        listChanged: {
          tools: { autoRefresh: false, onChanged: () => options.onToolsChanged?.() },
        },
      },
    );
    const connection = new UpstreamConnection(client, transport, options.maxMessageBytes);
    transport.onerror = (error) => connection.noteError(error, options.logger);
    client.onclose = () => connection.closed(options.onClosed);
    try {
      await client.connect(transport, { timeout: options.timeoutMs });
    } catch (error) {
      await connection.close();
      throw error;
    }
    return connection;
  }

  /** The process id of a stdio upstream (also its process group's). */
  get pid(): number | undefined {
    return this.transport instanceof StdioTransport ? this.transport.pid : undefined;
  }

  /** The server's name, title and version as it reported them, fit to show. */
  get server(): UpstreamServer | undefined {
    const info = this.client.getServerVersion();
    return info && serverOf(info);
  }

  async listTools(timeoutMs: number): Promise<McpTool[]> {
    return (await this.client.listTools(undefined, { timeout: timeoutMs, cacheMode: 'bypass' })).tools;
  }

  async ping(timeoutMs: number): Promise<void> {
    await this.client.ping({ timeout: timeoutMs });
  }

  /**
   * Calls a tool. The result is the upstream's as the SDK parsed it (output schemas are not checked here:
   * compiling an upstream's schema is left to the client that asked). Aborting the signal sends
   * notifications/cancelled upstream, and so does the timeout.
   */
  async call(name: string, args: unknown, options: CallOptions): Promise<CallToolResult> {
    this.inFlight += 1;
    try {
      return (await this.client.request(
        { method: 'tools/call', params: { name, arguments: args as Record<string, unknown> } },
        {
          signal: options.signal,
          timeout: options.timeoutMs,
          ...(options.onprogress && { onprogress: options.onprogress }),
        },
      )) as CallToolResult;
    } catch (error) {
      const cutOff =
        error instanceof ProtocolError && (error.data as { cutOff?: string })?.cutOff === CUT_OFF;
      if (cutOff || this.closeReason === TOO_LARGE)
        throw new ResponseTooLarge(this.maxMessageBytes, { cause: error });
      throw error;
    } finally {
      this.inFlight -= 1;
    }
  }

  /**
   * Closes the connection, and for stdio ends the child's process group; `hung`: the process stopped
   * answering, so its group is killed rather than asked to end.
   */
  async close(hung = false): Promise<void> {
    this.closing = true;
    if (hung && this.transport instanceof StdioTransport) this.transport.kill();
    await this.client.close().catch(() => undefined);
  }

  private noteError(error: Error, logger: Logger): void {
    if (/exceeded maximum size/.test(error.message)) this.closeReason = TOO_LARGE;
    logger.debug({ err: error }, 'upstream transport error');
  }

  private closed(onClosed: ConnectionOptions['onClosed']): void {
    if (this.closing) return;
    this.closing = true;
    this.closeReason ??= this.transport instanceof StdioTransport ? 'exited' : 'closed the connection';
    onClosed?.(this.closeReason);
  }
}

function createTransport(config: UpstreamConfig, options: ConnectionOptions): Transport {
  if (config.type === 'http') {
    const transport: Transport = new StreamableHTTPClientTransport(new URL(config.url as string), {
      requestInit: { headers: config.headers },
      fetch: cappedFetch(options.maxMessageBytes, (body) => answerCutOff(transport, body)),
      // Headers carry the upstream's credentials: they go to its origin only.
      redirectPolicy: 'same-origin',
    });
    return transport;
  }
  const transport = new StdioTransport({
    command: config.command as string,
    args: config.args,
    env: config.env,
    ...(config.cwd && { cwd: config.cwd }),
    maxMessageBytes: options.maxMessageBytes,
  });
  logLines(transport.stderr, options.logger);
  return transport;
}

function serverOf(info: { name: string; version: string; title?: string }): UpstreamServer {
  const shown = (text: string) => printable(text.slice(0, MAX_SERVER_INFO));
  return {
    name: shown(info.name),
    version: shown(info.version),
    ...(info.title && { title: shown(info.title) }),
  };
}

/**
 * Ends the requests whose reply was cut off, at once, with an error only Bastion can give (the SDK would
 * wait for the reply until the timeout).
 */
function answerCutOff(transport: Transport, body: unknown): void {
  let sent: unknown;
  try {
    sent = JSON.parse(String(body));
  } catch {
    return;
  }
  for (const message of Array.isArray(sent) ? sent : [sent]) {
    const { id, method } = (message ?? {}) as { id?: unknown; method?: unknown };
    if ((typeof id !== 'string' && typeof id !== 'number') || typeof method !== 'string') continue;
    transport.onmessage?.({
      jsonrpc: '2.0',
      id,
      error: {
        code: ProtocolErrorCode.InternalError,
        message: 'reply over the size limit',
        data: { cutOff: CUT_OFF },
      },
    });
  }
}

/** The upstream's stderr, line by line, into Bastion's log (at debug: upstreams are chatty). */
function logLines(stream: Readable, logger: Logger): void {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.trim()) logger.debug({ stderr: printable(line.slice(0, MAX_STDERR_LINE)) }, 'upstream stderr');
  });
}
