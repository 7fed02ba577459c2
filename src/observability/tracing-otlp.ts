// The exporting side of tracing, loaded by Tracing.start only when an OTLP endpoint is configured.
import {
  context as otelContext,
  INVALID_TRACEID,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ERROR_TYPE_VALUE_OTHER,
  HTTP_REQUEST_METHOD_VALUE_OTHER,
} from '@opentelemetry/semantic-conventions';

import { Tracing, type HttpSpan, type SpanAttributes, type TracingOptions } from './tracing.js';

// The context manager and propagator are process-wide and hold no per-instance state: installed by the
// first started instance, kept for the life of the process, so later instances (tests) reuse them.
let processGlobalsInstalled = false;

export class ExportingTracing extends Tracing {
  private readonly provider: NodeTracerProvider;
  // Spans come from this instance's own tracer, so it works whether or not it won the global registration.
  private readonly tracer: Tracer;
  private stopped = false;

  constructor(options: TracingOptions) {
    super();
    this.provider = createProvider(options);
    this.provider.register(processGlobalsInstalled ? { contextManager: null, propagator: null } : {});
    processGlobalsInstalled = true;
    this.tracer = this.provider.getTracer(options.serviceName, options.serviceVersion);
  }

  override get enabled(): boolean {
    return true;
  }

  override inSpan<T>(name: string, attributes: SpanAttributes, fn: () => Promise<T>): Promise<T> {
    return this.tracer.startActiveSpan(name, { attributes }, (span) => runInSpan(span, fn));
  }

  override startHttpSpan(
    method: string,
    route: string | undefined,
    headers: Record<string, string | string[] | undefined>,
  ): HttpSpan {
    const parent = propagation.extract(ROOT_CONTEXT, headers);
    const requestMethod = knownMethod(method);
    const attributes: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: requestMethod };
    if (route) attributes[ATTR_HTTP_ROUTE] = route;
    const span = this.tracer.startSpan(
      httpSpanName(requestMethod, route),
      { kind: SpanKind.SERVER, attributes },
      parent,
    );
    return new ServerSpan(span, trace.setSpan(parent, span));
  }

  override traceId(): string | undefined {
    const traceId = trace.getActiveSpan()?.spanContext().traceId;
    return traceId === INVALID_TRACEID ? undefined : traceId;
  }

  override async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.releaseGlobalProvider();
    await this.provider.shutdown();
  }

  // Frees the global slot so nothing keeps a stopped provider and a later instance can register.
  private releaseGlobalProvider(): void {
    const global = trace.getTracerProvider();
    if (global instanceof ProxyTracerProvider && global.getDelegate() === this.provider) trace.disable();
  }
}

class ServerSpan implements HttpSpan {
  private ended = false;

  constructor(
    private readonly span: Span,
    private readonly spanContext: Context,
  ) {}

  run<T>(fn: () => T): T {
    return otelContext.with(this.spanContext, fn);
  }

  context(): Context {
    return this.spanContext;
  }

  end(statusCode: number): void {
    if (this.ended) return;
    this.ended = true;
    this.span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
    // Server spans fail on 5xx only: a 4xx is the client's error (semantic conventions, HTTP spans).
    if (statusCode >= 500) {
      this.span.setAttribute(ATTR_ERROR_TYPE, String(statusCode));
      this.span.setStatus({ code: SpanStatusCode.ERROR });
    }
    this.span.end();
  }
}

function createProvider(options: TracingOptions): NodeTracerProvider {
  const exporter = new OTLPTraceExporter({
    url: tracesUrl(options.endpoint ?? ''),
    headers: options.headers,
  });
  const resource = defaultResource().merge(
    resourceFromAttributes({
      [ATTR_SERVICE_NAME]: options.serviceName,
      [ATTR_SERVICE_VERSION]: options.serviceVersion,
    }),
  );
  return new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
}

// The base URL gets the signal path appended, as OTEL_EXPORTER_OTLP_ENDPOINT does (OTLP exporter spec).
function tracesUrl(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TypeError('The OTLP endpoint is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError('The OTLP endpoint must be an http or https URL');
  }
  return endpoint.endsWith('/') ? `${endpoint}v1/traces` : `${endpoint}/v1/traces`;
}

async function runInSpan<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setAttribute(
      ATTR_ERROR_TYPE,
      error instanceof Error ? error.constructor.name : ERROR_TYPE_VALUE_OTHER,
    );
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}

const KNOWN_METHODS = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'TRACE',
]);

// Semantic conventions: a method outside the known set is recorded as `_OTHER`, so a client cannot put
// arbitrary text into the span.
function knownMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : HTTP_REQUEST_METHOD_VALUE_OTHER;
}

function httpSpanName(method: string, route: string | undefined): string {
  const name = method === HTTP_REQUEST_METHOD_VALUE_OTHER ? 'HTTP' : method;
  return route ? `${name} ${route}` : name;
}
