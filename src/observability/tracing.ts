import type { Context } from '@opentelemetry/api';

export interface TracingOptions {
  /** OTLP/HTTP base URL (e.g. `http://collector:4318`); spans go to `<endpoint>/v1/traces`. Off when empty. */
  endpoint?: string;
  serviceName: string;
  serviceVersion: string;
  /** Sent with every export, e.g. the collector's credentials. */
  headers?: Record<string, string>;
}

/** Attribute values a span accepts from callers: never a client's raw input or a secret. */
export type SpanAttributes = Record<string, string | number | boolean>;

/** A server span for one HTTP request, begun before the handler and ended with the response. */
export interface HttpSpan {
  /** Runs `fn` with this span active, so async work started inside belongs to it. */
  run<T>(fn: () => T): T;
  /** The OpenTelemetry context holding this span, for `context.with` or `context.bind`. */
  context(): Context;
  /** Records the status code (5xx marks the span failed) and ends the span; later calls do nothing. */
  end(statusCode: number): void;
}

const NOOP_HTTP_SPAN: HttpSpan = Object.freeze({
  run: <T>(fn: () => T): T => fn(),
  // No span, so no context: nothing reads it while tracing is off.
  context: (): Context => undefined as unknown as Context,
  end: (): void => undefined,
});

/**
 * Spans for HTTP requests, MCP methods and tool calls, exported over OTLP/HTTP (JSON). An instance started
 * without an endpoint is disabled: every method is a pass-through that allocates nothing.
 */
export class Tracing {
  protected constructor() {}

  /**
   * A disabled instance without `endpoint`, otherwise one exporting to `<endpoint>/v1/traces`. The
   * OpenTelemetry SDK and exporter are loaded only then: a server without tracing never loads them.
   */
  static async start(options: TracingOptions): Promise<Tracing> {
    if (!options.endpoint) return Tracing.disabled();
    const { ExportingTracing } = await import('./tracing-otlp.js');
    return new ExportingTracing(options);
  }

  /** The instance that traces nothing. */
  static disabled(): Tracing {
    return new Tracing();
  }

  get enabled(): boolean {
    return false;
  }

  /** Runs `fn` in a child span of the active context; a throw marks the span failed and propagates. */
  inSpan<T>(_name: string, _attributes: SpanAttributes, fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  /**
   * Begins a server span continuing the request's W3C `traceparent`. `route` is the route template,
   * never the path the client sent.
   */
  startHttpSpan(
    _method: string,
    _route: string | undefined,
    _headers: Record<string, string | string[] | undefined>,
  ): HttpSpan {
    return NOOP_HTTP_SPAN;
  }

  /** The active span's trace id, for log lines; undefined when disabled or outside a span. */
  traceId(): string | undefined {
    return undefined;
  }

  /**
   * Exports pending spans and stops the exporter; later calls do nothing. Rejects when that last export
   * fails (collector down, after the exporter's retries: up to about 10 s), with the provider stopped anyway.
   */
  async shutdown(): Promise<void> {}
}
