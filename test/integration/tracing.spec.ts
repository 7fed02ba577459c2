import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import Fastify from 'fastify';
import { Tracing, type HttpSpan } from '../../src/observability/tracing.js';

/** An OTLP/JSON attribute value, as the exporter encodes it. */
interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
}
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: KeyValue[];
  events?: { name: string; attributes: KeyValue[] }[];
  status?: { code?: number };
}
interface ExportedSpan extends OtlpSpan {
  resource: Record<string, unknown>;
}

// OTLP enum values (opentelemetry-proto trace.proto), which differ from the API's.
const SPAN_KIND_INTERNAL = 1;
const SPAN_KIND_SERVER = 2;
const STATUS_CODE_ERROR = 2;

/** A fake collector: stores what arrives at POST /v1/traces (OTLP/HTTP JSON). */
class FakeCollector {
  readonly spans: ExportedSpan[] = [];
  readonly requests: { contentType: string | undefined; headers: IncomingHttpHeaders }[] = [];
  /** A status answered instead of accepting the export. */
  failWith: number | undefined;
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      this.requests.push({ contentType: req.headers['content-type'], headers: req.headers });
      if (this.failWith) {
        res.writeHead(this.failWith).end();
        return;
      }
      this.store(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.server.close((e) => (e ? reject(e) : resolve())));
  }

  reset(): void {
    this.spans.length = 0;
    this.requests.length = 0;
    this.failWith = undefined;
  }

  byName(name: string): ExportedSpan {
    const span = this.spans.find((s) => s.name === name);
    if (!span) throw new Error(`no exported span named ${name}`);
    return span;
  }

  private store(body: {
    resourceSpans: { resource: { attributes: KeyValue[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
  }): void {
    for (const { resource, scopeSpans } of body.resourceSpans) {
      for (const { spans } of scopeSpans) {
        for (const span of spans) this.spans.push({ ...span, resource: attributesOf(resource.attributes) });
      }
    }
  }
}

function attributesOf(list: KeyValue[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list) {
    out[key] = value.stringValue ?? value.boolValue ?? value.doubleValue ?? Number(value.intValue);
  }
  return out;
}

const collector = new FakeCollector();
beforeAll(() => collector.listen());
afterAll(() => collector.close());
beforeEach(() => collector.reset());

function startTracing(): Promise<Tracing> {
  return Tracing.start({
    endpoint: collector.url,
    serviceName: 'bastion-test',
    serviceVersion: '9.9.9',
    headers: { authorization: 'Bearer collector-token' },
  });
}

describe('Tracing: disabled without an endpoint', () => {
  it.each([
    ['undefined', undefined],
    ['empty', ''],
  ])('is a pass-through when the endpoint is %s', async (_label, endpoint) => {
    const tracing = await Tracing.start({ endpoint, serviceName: 'bastion-test', serviceVersion: '9.9.9' });
    expect(tracing.enabled).toBe(false);

    const seen = await tracing.inSpan('tool read_text_file', { tool: 'read_text_file' }, async () => {
      await tick();
      return tracing.traceId();
    });
    expect(seen).toBeUndefined();
    const http = tracing.startHttpSpan('POST', '/mcp', { traceparent: validTraceparent().header });
    expect(http.run(() => 42)).toBe(42);
    http.end(500);
    expect(tracing.traceId()).toBeUndefined();

    await tracing.shutdown();
    expect(collector.requests).toHaveLength(0);
  });

  it('propagates the error of fn unchanged', async () => {
    const tracing = await Tracing.start({ serviceName: 'bastion-test', serviceVersion: '9.9.9' });
    const error = new Error('boom');
    await expect(tracing.inSpan('tool x', {}, () => Promise.reject(error))).rejects.toBe(error);
    await tracing.shutdown();
  });
});

describe('Tracing: exporting to an OTLP collector', () => {
  it.each(['ftp://user:secret@collector:4318', 'not a url'])(
    'refuses the endpoint %s without echoing it',
    async (endpoint) => {
      const start = () => Tracing.start({ endpoint, serviceName: 'bastion-test', serviceVersion: '9.9.9' });
      await expect(start()).rejects.toThrow(/OTLP endpoint/);
      await expect(start()).rejects.not.toThrow(/secret|not a url/);
    },
  );

  it('exports an HTTP span, its MCP span and its tool span as one trace, in OTLP JSON', async () => {
    const tracing = await startTracing();
    expect(tracing.enabled).toBe(true);
    let traceIdInTool: string | undefined;

    const http = tracing.startHttpSpan('POST', '/mcp', {});
    await http.run(() =>
      tracing.inSpan('mcp tools/call', { 'mcp.method.name': 'tools/call' }, () =>
        tracing.inSpan(
          'tool read_text_file',
          { 'gen_ai.tool.name': 'read_text_file', attempt: 1 },
          async () => {
            await tick();
            traceIdInTool = tracing.traceId();
          },
        ),
      ),
    );
    http.end(200);
    await tracing.shutdown();

    expect(collector.requests[0]?.contentType).toBe('application/json');
    expect(collector.requests[0]?.headers.authorization).toBe('Bearer collector-token');
    const server = collector.byName('POST /mcp');
    const mcp = collector.byName('mcp tools/call');
    const tool = collector.byName('tool read_text_file');
    expect(collector.spans).toHaveLength(3);
    expect(new Set(collector.spans.map((s) => s.traceId))).toEqual(new Set([server.traceId]));
    expect(traceIdInTool).toBe(server.traceId);
    expect(server.parentSpanId ?? '').toBe('');
    expect(mcp.parentSpanId).toBe(server.spanId);
    expect(tool.parentSpanId).toBe(mcp.spanId);

    expect(server.kind).toBe(SPAN_KIND_SERVER);
    expect(attributesOf(server.attributes)).toEqual({
      'http.request.method': 'POST',
      'http.route': '/mcp',
      'http.response.status_code': 200,
    });
    expect(server.status?.code ?? 0).not.toBe(STATUS_CODE_ERROR);
    expect(mcp.kind).toBe(SPAN_KIND_INTERNAL);
    expect(attributesOf(mcp.attributes)).toEqual({ 'mcp.method.name': 'tools/call' });
    expect(attributesOf(tool.attributes)).toEqual({ 'gen_ai.tool.name': 'read_text_file', attempt: 1 });
    expect(server.resource).toMatchObject({ 'service.name': 'bastion-test', 'service.version': '9.9.9' });
  });

  it("continues the caller's trace from an incoming traceparent", async () => {
    const tracing = await startTracing();
    const incoming = validTraceparent();

    const http = tracing.startHttpSpan('POST', '/mcp', { traceparent: incoming.header });
    await http.run(() => tracing.inSpan('mcp initialize', {}, async () => undefined));
    http.end(200);
    await tracing.shutdown();

    const server = collector.byName('POST /mcp');
    expect(server.traceId).toBe(incoming.traceId);
    expect(server.parentSpanId).toBe(incoming.spanId);
    expect(collector.byName('mcp initialize').traceId).toBe(incoming.traceId);
  });

  it('marks a throwing span ERROR with an exception event, and rethrows', async () => {
    const tracing = await startTracing();
    const error = new RangeError('boom');

    await expect(tracing.inSpan('tool write_file', {}, () => Promise.reject(error))).rejects.toBe(error);
    await tracing.shutdown();

    const span = collector.byName('tool write_file');
    expect(span.status?.code).toBe(STATUS_CODE_ERROR);
    expect(attributesOf(span.attributes)).toEqual({ 'error.type': 'RangeError' });
    expect(span.events?.map((e) => e.name)).toEqual(['exception']);
    expect(attributesOf(span.events?.[0]?.attributes)).toMatchObject({
      'exception.type': 'RangeError',
      'exception.message': 'boom',
    });
  });

  it('fails a server span on 5xx only, and ends it once', async () => {
    const tracing = await startTracing();
    const failed = tracing.startHttpSpan('GET', '/health/ready', {});
    failed.end(503);
    failed.end(200);
    tracing.startHttpSpan('DELETE', '/mcp', {}).end(404);
    await tracing.shutdown();

    const ready = collector.byName('GET /health/ready');
    expect(collector.spans).toHaveLength(2);
    expect(ready.status?.code).toBe(STATUS_CODE_ERROR);
    expect(attributesOf(ready.attributes)).toMatchObject({
      'http.response.status_code': 503,
      'error.type': '503',
    });
    expect(collector.byName('DELETE /mcp').status?.code ?? 0).not.toBe(STATUS_CODE_ERROR);
  });

  it('records an unknown method as _OTHER and a request without a route by its method only', async () => {
    const tracing = await startTracing();
    tracing.startHttpSpan('BREW<script>', undefined, {}).end(404);
    await tracing.shutdown();

    const [span] = collector.spans;
    expect(span?.name).toBe('HTTP');
    expect(attributesOf(span?.attributes)).toEqual({
      'http.request.method': '_OTHER',
      'http.response.status_code': 404,
    });
  });

  it('has no trace id outside a span, and stops exporting after shutdown', async () => {
    const tracing = await startTracing();
    expect(tracing.traceId()).toBeUndefined();
    await tracing.shutdown();
    await tracing.shutdown();

    await tracing.inSpan('late', {}, async () => undefined);
    expect(collector.spans).toHaveLength(0);
  });

  it('rejects shutdown when the collector refuses the last export, and stays stopped', async () => {
    const tracing = await startTracing();
    collector.failWith = 400;
    await tracing.inSpan('tool read_text_file', {}, async () => undefined);

    await expect(tracing.shutdown()).rejects.toThrow();
    await expect(tracing.shutdown()).resolves.toBeUndefined();
    expect(collector.requests).toHaveLength(1);
  });

  it('nests spans under a Fastify request when the handler runs inside HttpSpan.run', async () => {
    const tracing = await startTracing();
    const spans = new WeakMap<object, HttpSpan>();
    const app = Fastify();
    app.addHook('onRequest', (request, _reply, done) => {
      spans.set(request, tracing.startHttpSpan(request.method, request.routeOptions.url, request.headers));
      done();
    });
    // preHandler runs after the body is read, so the handler and everything it awaits see the span.
    app.addHook('preHandler', (request, _reply, done) => spans.get(request)?.run(done));
    app.addHook('onResponse', (request, reply, done) => {
      spans.get(request)?.end(reply.statusCode);
      done();
    });
    app.post('/mcp/:session', async (request) => {
      await tick();
      return tracing.inSpan('mcp tools/call', {}, async () => ({
        body: request.body,
        traceId: tracing.traceId(),
      }));
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const incoming = validTraceparent();

    const response = await fetch(
      `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/mcp/s1?q=1`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: incoming.header },
        body: JSON.stringify({ jsonrpc: '2.0' }),
      },
    );
    const result = (await response.json()) as { traceId: string };
    await app.close();
    await tracing.shutdown();

    const server = collector.byName('POST /mcp/:session');
    expect(result.traceId).toBe(incoming.traceId);
    expect(server.traceId).toBe(incoming.traceId);
    expect(collector.byName('mcp tools/call').parentSpanId).toBe(server.spanId);
    expect(JSON.stringify(server.attributes)).not.toContain('s1');
  });
});

function validTraceparent(): { header: string; traceId: string; spanId: string } {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const spanId = '00f067aa0ba902b7';
  return { header: `00-${traceId}-${spanId}-01`, traceId, spanId };
}
