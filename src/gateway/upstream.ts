import { ProtocolError, ProtocolErrorCode, SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  handleWhen,
  retry,
  type CircuitBreakerPolicy,
  type RetryPolicy,
} from 'cockatiel';
import type { Logger } from 'pino';
import { circuitStateName, type CircuitStateName } from '../common/circuit-state.js';
import { formatMs } from '../common/duration.js';
import { settleOnAbort } from '../common/settle-on-abort.js';
import type { UpstreamConfig } from '../config/upstreams.schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { ToolAnnotations, ToolContext, ToolResult } from '../tools/tool.js';
import { ToolFailure, ToolRefusal } from '../tools/tool.errors.js';
import type { ToolRegistry } from '../tools/tool-registry.js';
import { ResponseTooLarge } from './capped-fetch.js';
import { messageLimit, UpstreamConnection, type UpstreamServer } from './upstream-connection.js';
import {
  causes,
  failureDetail,
  failureKind,
  isRetryable,
  isUpstreamFailure,
  shortened,
} from './upstream-errors.js';
import { toolResultOf, upstreamTools, type SkippedTool } from './upstream-tools.js';

export type UpstreamState = 'starting' | 'up' | 'down' | 'disabled' | 'closed';

/** An upstream as /diagnostics and `bastion doctor` show it (no env values, no headers). */
export interface UpstreamStatus {
  name: string;
  type: 'stdio' | 'http';
  state: UpstreamState;
  circuit: CircuitStateName;
  scope: string;
  /** The tools offered, with their prefix. */
  tools: string[];
  skipped: SkippedTool[];
  /** Tools not offered because another tool has the name. */
  clashes: string[];
  restarts: number;
  server?: UpstreamServer;
  pid?: number;
  /** For the operator: the upstream's own words in it are printable, redacted and cut short. */
  lastError?: string;
}

export interface UpstreamDeps {
  registry: ToolRegistry;
  logger: Logger;
  metrics: Metrics;
  /** The door's limit on one result (workspace.limits.maxResponseBytes). */
  maxResponseBytes: number;
}

const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A connection that stayed up this long starts the restart backoff over. */
const STABLE_MS = 60_000;
const CHECK_TIMEOUT_MS = 10_000;
/** How much of an upstream's error message the log keeps. */
const LOGGED_ERROR_CHARS = 2_000;

/**
 * One upstream MCP server: its connections (one for stdio, a small pool for HTTP), kept healthy by periodic
 * pings and a circuit breaker, restarted with backoff when they end; its tools in the registry, hidden
 * while it is down or its circuit is open. Every call has a timeout and forwards cancellation; only calls
 * to tools the upstream marks read-only or idempotent are retried.
 */
export class Upstream {
  private connections: UpstreamConnection[] = [];
  private state: UpstreamState = 'starting';
  private readonly breaker: CircuitBreakerPolicy;
  private readonly retries: RetryPolicy;
  private readonly logger: Logger;
  private toolNames: string[] = [];
  private skipped: SkippedTool[] = [];
  private clashes: string[] = [];
  private restarts = 0;
  private failedStarts = 0;
  private upSince = 0;
  private lastError?: string;
  private openedAt = 0;
  private timer?: NodeJS.Timeout;
  private settle!: () => void;
  /** Resolves after the first attempt to connect, whatever its outcome. */
  readonly firstAttempt = new Promise<void>((resolve) => (this.settle = resolve));

  constructor(
    readonly config: UpstreamConfig,
    private readonly deps: UpstreamDeps,
  ) {
    this.logger = deps.logger.child({ upstream: config.name });
    this.breaker = circuitBreaker(handleWhen(isUpstreamFailure), {
      halfOpenAfter: config.breakerHalfOpenMs,
      breaker: new ConsecutiveBreaker(config.breakerFailures),
    });
    this.breaker.onStateChange((state) => this.circuitChanged(state));
    this.retries = retry(handleWhen(isRetryable), {
      maxAttempts: config.maxRetries,
      backoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 5_000 }),
    });
    // A disabled upstream has no series: it is not down, it is off.
    if (config.enabled) {
      const labels = { upstream: config.name };
      deps.metrics.upstreamUp.set(labels, 0);
      deps.metrics.upstreamCircuitOpen.set(labels, 0);
      deps.metrics.upstreamRestarts.inc(labels, 0);
    }
  }

  start(): void {
    if (!this.config.enabled) {
      this.state = 'disabled';
      this.settle();
      return;
    }
    void this.connect();
  }

  /** Whether its tools can be called now: connected, and the circuit closed. */
  available(): boolean {
    return this.state === 'up' && this.breaker.state === CircuitState.Closed;
  }

  status(): UpstreamStatus {
    const first = this.connections[0];
    const pid = first?.pid;
    return {
      name: this.config.name,
      type: this.config.type,
      state: this.state,
      circuit: circuitStateName(this.breaker.state) ?? 'open',
      scope: this.config.scope,
      tools: [...this.toolNames],
      skipped: [...this.skipped],
      clashes: [...this.clashes],
      restarts: this.restarts,
      ...(first?.server && { server: first.server }),
      ...(pid !== undefined && { pid }),
      ...(this.lastError && { lastError: this.lastError }),
    };
  }

  async close(): Promise<void> {
    this.state = 'closed';
    clearTimeout(this.timer);
    await this.dropConnections();
  }

  /** Calls one of the upstream's tools by its own name; every failure becomes a refusal or a failure to show. */
  async call(name: string, args: unknown, ctx: ToolContext, hints: ToolAnnotations): Promise<ToolResult> {
    const tool = `${this.config.prefix}${name}`;
    const started = performance.now();
    let outcome = 'ok';
    try {
      if (!this.available()) throw this.unavailable(tool);
      const attempt = () => this.breaker.execute(() => this.attempt(name, args, ctx));
      const retryable = hints.readOnlyHint || hints.idempotentHint;
      const result = retryable
        ? await settleOnAbort(this.retries.execute(attempt), ctx.signal)
        : await attempt();
      if (result.isError) outcome = 'tool_error';
      return toolResultOf(result);
    } catch (error) {
      if (ctx.signal.aborted) {
        outcome = 'cancelled';
        throw error;
      }
      const translated = this.translate(error, tool, ctx.requestId);
      outcome = translated.code;
      throw translated;
    } finally {
      const { upstreamCalls, upstreamDuration } = this.deps.metrics;
      upstreamCalls.inc({ upstream: this.config.name, outcome });
      upstreamDuration.observe({ upstream: this.config.name }, (performance.now() - started) / 1000);
    }
  }

  private async attempt(name: string, args: unknown, ctx: ToolContext) {
    const connection = this.pick();
    if (!connection) throw new SdkError(SdkErrorCode.NotConnected, 'not connected');
    try {
      return await connection.call(name, args, {
        signal: ctx.signal,
        timeoutMs: this.config.timeoutMs,
        ...(ctx.progress && { onprogress: (update) => void ctx.progress?.(update).catch(() => undefined) }),
      });
    } catch (error) {
      // The SDK reports a caller's abort as a timeout; the caller gave up, the upstream did not fail.
      if (ctx.signal.aborted) throw new Error('cancelled by the caller', { cause: error });
      throw error;
    }
  }

  /** The connection with the fewest calls in flight. */
  private pick(): UpstreamConnection | undefined {
    let best: UpstreamConnection | undefined;
    for (const c of this.connections) if (!best || c.inFlight < best.inFlight) best = c;
    return best;
  }

  private async connect(): Promise<void> {
    const { config } = this;
    const size = config.type === 'http' ? config.pool : 1;
    const opened = await Promise.allSettled(
      Array.from({ length: size }, () =>
        UpstreamConnection.open(config, {
          logger: this.logger,
          maxMessageBytes: messageLimit(this.deps.maxResponseBytes),
          timeoutMs: config.timeoutMs,
          onClosed: (reason) => this.lost(reason),
          onToolsChanged: () =>
            void this.refreshTools().catch((error: unknown) =>
              this.logger.warn({ err: error }, 'upstream tools could not be listed again'),
            ),
        }),
      ),
    );
    const connections = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failure = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if ((this.state as UpstreamState) === 'closed' || failure) {
      await Promise.all(connections.map((c) => c.close()));
      if (failure && this.state !== 'closed') this.retryLater(failureDetail(failure.reason));
      this.settle();
      return;
    }
    this.connections = connections;
    try {
      await this.refreshTools();
    } catch (error) {
      await this.dropConnections();
      this.retryLater(`listing its tools failed: ${failureDetail(error)}`);
      this.settle();
      return;
    }
    this.state = 'up';
    this.upSince = Date.now();
    this.lastError = undefined;
    this.deps.metrics.upstreamUp.set({ upstream: config.name }, 1);
    this.countOffered();
    this.deps.registry.changed();
    this.logger.info(
      { tools: this.toolNames.length, server: connections[0]?.server, pid: connections[0]?.pid },
      'upstream connected',
    );
    this.scheduleCheck();
    this.settle();
  }

  /** Lists the upstream's tools again and puts them in the registry in place of the old ones. */
  private async refreshTools(): Promise<void> {
    const connection = this.connections[0];
    if (!connection) return;
    const listed = await connection.listTools(this.config.timeoutMs);
    const { tools, skipped } = upstreamTools(
      this.config,
      listed,
      (name, args, ctx, hints) => this.call(name, args, ctx, hints),
      () => this.available(),
    );
    const { added, clashes } = this.deps.registry.replaceGroup(`upstream:${this.config.name}`, tools);
    this.toolNames = added;
    this.skipped = skipped;
    this.clashes = clashes;
    this.countOffered();
    if (skipped.length > 0 || clashes.length > 0)
      this.logger.warn({ skipped, clashes }, 'upstream tools not offered');
  }

  /**
   * A connection ended by itself, or stopped answering (`hung`): the tools are hidden and the upstream
   * restarted after a pause.
   */
  private lost(reason: string, hung = false): void {
    if (this.state !== 'up') return;
    this.state = 'down';
    this.restarts += 1;
    this.deps.metrics.upstreamRestarts.inc({ upstream: this.config.name });
    this.deps.metrics.upstreamUp.set({ upstream: this.config.name }, 0);
    this.countOffered();
    if (Date.now() - this.upSince > STABLE_MS) this.failedStarts = 0;
    clearTimeout(this.timer);
    void this.dropConnections(hung);
    this.deps.registry.changed();
    this.retryLater(`the upstream ${reason}`);
  }

  /** bastion_upstream_tools: the tools offered now (none while the upstream is down or its circuit open). */
  private countOffered(): void {
    this.deps.metrics.upstreamTools.set(
      { upstream: this.config.name },
      this.available() ? this.toolNames.length : 0,
    );
  }

  private async dropConnections(hung = false): Promise<void> {
    const connections = this.connections;
    this.connections = [];
    await Promise.all(connections.map((c) => c.close(hung)));
  }

  private retryLater(why: string): void {
    if (this.state === 'closed') return;
    this.state = 'down';
    this.lastError = shortened(why);
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** this.failedStarts);
    this.failedStarts += 1;
    this.logger.warn({ reason: this.lastError, retryInMs: delay }, 'upstream unavailable');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), delay).unref();
  }

  /** Pings every connection through the breaker: quietly every interval, and to try an open circuit again. */
  private scheduleCheck(): void {
    clearTimeout(this.timer);
    const open = this.breaker.state !== CircuitState.Closed;
    const delay = open ? this.config.breakerHalfOpenMs : this.config.healthCheckIntervalMs;
    this.timer = setTimeout(() => void this.check(), delay).unref();
  }

  /**
   * A check that fails while the circuit is not closed means the connections themselves are stuck (a hung
   * process, an upstream that forgot its sessions): they are replaced, as if they had ended.
   */
  private async check(): Promise<void> {
    if (this.state !== 'up') return;
    const timeoutMs = Math.min(this.config.timeoutMs, CHECK_TIMEOUT_MS);
    try {
      await this.breaker.execute(() => Promise.all(this.connections.map((c) => c.ping(timeoutMs))));
    } catch (error) {
      if (!(error instanceof BrokenCircuitError)) {
        this.lastError = failureDetail(error);
        if (this.breaker.state !== CircuitState.Closed)
          return this.lost(`${failureKind(error)} to a check`, true);
      }
    }
    if (this.state === 'up') this.scheduleCheck();
  }

  private circuitChanged(state: CircuitState): void {
    const name = circuitStateName(state) ?? 'open';
    if (name === 'open') this.openedAt = Date.now();
    this.deps.metrics.upstreamCircuitOpen.set({ upstream: this.config.name }, name === 'open' ? 1 : 0);
    this.countOffered();
    this.logger.warn({ circuit: name }, 'upstream circuit changed');
    if (name !== 'half-open') this.deps.registry.changed();
    if (name === 'open' && this.state === 'up') this.scheduleCheck();
  }

  private unavailable(tool: string): ToolRefusal {
    const { name, breakerHalfOpenMs } = this.config;
    if (this.state === 'up') {
      const wait = Math.max(1, Math.ceil((this.openedAt + breakerHalfOpenMs - Date.now()) / 1000));
      return new ToolRefusal(
        'upstream_unavailable',
        `${tool} is unavailable: the upstream ${name} is failing, and calls are paused; try again in about ${wait}s.`,
      );
    }
    return new ToolRefusal(
      'upstream_unavailable',
      `${tool} is unavailable: the upstream ${name} is ${this.state === 'disabled' ? 'disabled' : 'not connected'}; try again later.`,
    );
  }

  /**
   * A failure as the caller sees it: Bastion's words (which upstream, what kind of failure, the request id),
   * never the upstream's text, which goes to the log for the operator.
   */
  private translate(error: unknown, tool: string, requestId: string): ToolRefusal | ToolFailure {
    if (error instanceof ToolRefusal) return error;
    if (error instanceof BrokenCircuitError) return this.unavailable(tool);
    this.logger.warn(
      { tool, reqId: requestId, reason: failureDetail(error, LOGGED_ERROR_CHARS) },
      'upstream call failed',
    );
    const { name, timeoutMs } = this.config;
    const request = `(request ${requestId})`;
    if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout)
      return new ToolFailure(
        'upstream_timeout',
        `${tool} timed out: the upstream ${name} did not answer within ${formatMs(timeoutMs)} ${request}.`,
      );
    if (error instanceof ProtocolError && error.code === ProtocolErrorCode.InvalidParams)
      return new ToolRefusal(
        'invalid_arguments',
        `${tool}: the upstream ${name} refused the arguments ${request}.`,
      );
    const tooLarge = causes(error).find((e): e is ResponseTooLarge => e instanceof ResponseTooLarge);
    if (tooLarge)
      return new ToolFailure(
        'too_large',
        `${tool} failed: the upstream ${name} sent a reply over the ${tooLarge.limit}-byte limit ${request}.`,
      );
    return new ToolFailure(
      'upstream_failed',
      `${tool} failed: the upstream ${name} ${failureKind(error)} ${request}.`,
    );
  }
}
