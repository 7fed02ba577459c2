import { Counter, Gauge, Histogram, register, type Registry } from 'prom-client';

/** Every series Bastion exposes starts with this, process defaults included. */
export const METRIC_PREFIX = 'bastion_';

/** Label value for anything outside a known set: a label never carries what a client typed. */
export const OTHER = 'other';

/**
 * Bastion's Prometheus series, in prom-client's default registry (the one /metrics exposes). Labels take
 * values from closed sets only (route templates, registered tool names, error codes, known methods), so a
 * client cannot create series or put its input into the exposition.
 */
export class Metrics {
  readonly registry: Registry = register;
  readonly httpDuration = this.histogram(
    'http_request_duration_seconds',
    'HTTP requests by route template, method and status.',
    ['route', 'method', 'status'],
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  readonly mcpRequests = this.counter(
    'mcp_requests_total',
    'MCP requests by JSON-RPC method, protocol revision and outcome.',
    ['method', 'revision', 'outcome'],
  );
  readonly toolCalls = this.counter('tool_calls_total', 'Tool calls by tool and outcome.', [
    'tool',
    'outcome',
  ]);
  readonly toolDuration = this.histogram(
    'tool_duration_seconds',
    'Tool call duration by tool and outcome.',
    ['tool', 'outcome'],
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  readonly operations = this.counter(
    'operations_total',
    'Workspace operations other than tool calls (resources, prompts, completion, subscriptions), by MCP method and outcome.',
    ['operation', 'outcome'],
  );
  readonly operationDuration = this.histogram(
    'operation_duration_seconds',
    'Workspace operation duration by MCP method and outcome.',
    ['operation', 'outcome'],
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  readonly sandboxRefusals = this.counter(
    'sandbox_refusals_total',
    'Calls refused by the door (scope, arguments, sandbox, limits), by reason.',
    ['reason'],
  );
  readonly authFailures = this.counter('auth_failures_total', 'Rejected credentials by reason.', ['reason']);
  readonly rateLimited = this.counter('rate_limited_total', 'Requests refused with 429, by limit.', [
    'limit',
  ]);
  readonly inFlight = this.gauge('in_flight_requests', 'MCP requests being served.');
  readonly ready = this.gauge(
    'ready',
    'Whether the readiness checks pass (1) or not (0, also while draining); computed at each scrape.',
  );
  readonly agentSteps = this.counter(
    'agent_steps_total',
    'Steps proposed by the model, by Supervisor decision and refusal reason.',
    ['decision', 'reason'],
  );
  readonly agentTurns = this.counter('agent_turns_total', 'Conversation turns by provider and outcome.', [
    'provider',
    'outcome',
  ]);
  readonly agentTurnDuration = this.histogram(
    'agent_turn_duration_seconds',
    'Conversation turn duration by provider.',
    ['provider'],
    [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  );
  readonly agentTokens = this.counter('agent_tokens_total', 'Model tokens by provider and direction.', [
    'provider',
    'direction',
  ]);
  readonly modelRetries = this.counter(
    'model_retries_total',
    'Model requests retried, by provider and cause.',
    ['provider', 'code'],
  );
  readonly circuitOpen = this.labelledGauge(
    'provider_circuit_open',
    'Whether a model provider circuit breaker is open (1) or not (0).',
    ['provider'],
  );

  readonly upstreamCalls = this.counter(
    'upstream_calls_total',
    'Calls to upstream MCP servers by upstream and outcome (ok, tool_error, upstream_timeout, upstream_failed, upstream_unavailable, too_large, invalid_arguments, cancelled).',
    ['upstream', 'outcome'],
  );
  readonly upstreamDuration = this.histogram(
    'upstream_call_duration_seconds',
    'Duration of calls to upstream MCP servers, retries included, by upstream.',
    ['upstream'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  );
  readonly upstreamUp = this.labelledGauge(
    'upstream_up',
    'Whether an upstream MCP server is connected (1) or not (0).',
    ['upstream'],
  );
  readonly upstreamCircuitOpen = this.labelledGauge(
    'upstream_circuit_open',
    'Whether the circuit breaker of an upstream MCP server is open (1: its tools are hidden) or not (0).',
    ['upstream'],
  );
  readonly upstreamRestarts = this.counter(
    'upstream_restarts_total',
    'Times an upstream connection ended or stopped answering and was started again.',
    ['upstream'],
  );
  readonly upstreamTools = this.labelledGauge(
    'upstream_tools',
    'Tools offered now from an upstream MCP server (0 while it is down or its circuit is open).',
    ['upstream'],
  );

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return this.existing<Counter<L>>(name) ?? new Counter({ name: METRIC_PREFIX + name, help, labelNames });
  }

  private histogram<L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    buckets: number[],
  ): Histogram<L> {
    return (
      this.existing<Histogram<L>>(name) ??
      new Histogram({ name: METRIC_PREFIX + name, help, labelNames, buckets })
    );
  }

  private labelledGauge<L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> {
    return this.existing<Gauge<L>>(name) ?? new Gauge({ name: METRIC_PREFIX + name, help, labelNames });
  }

  private gauge(name: string, help: string): Gauge {
    return this.existing<Gauge>(name) ?? new Gauge({ name: METRIC_PREFIX + name, help });
  }

  /** One process has one set of series, however many servers it starts (tests start several). */
  private existing<M>(name: string): M | undefined {
    return this.registry.getSingleMetric(METRIC_PREFIX + name) as M | undefined;
  }
}

/** A value from a closed set, or `other`. */
export function known(value: unknown, allowed: ReadonlySet<string>): string {
  return typeof value === 'string' && allowed.has(value) ? value : OTHER;
}
