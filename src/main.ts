import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module.js';
import { Authenticator } from './auth/authenticator.js';
import type { BastionConfig } from './config/config.schema.js';
import { HttpErrorFilter } from './mcp/http-error.filter.js';
import { MALFORMED_JSON, McpHttpService } from './mcp/mcp-http.service.js';
import { isLoopback } from './mcp/origin-policy.js';
import type { Runtime } from './runtime.js';

export interface HttpServer {
  app: NestFastifyApplication;
  url: string;
  close(): Promise<void>;
}

/** Refuses a bind that would expose an unauthenticated server beyond this machine. */
export function assertSafeBind(config: BastionConfig): void {
  if (config.auth.mode === 'none' && !isLoopback(config.server.host)) {
    throw new Error(
      `Refusing to listen on ${config.server.host}: no authentication is configured, so Bastion binds to ` +
        'loopback only (127.0.0.1, ::1 or localhost). Bind to loopback, or configure authentication first.',
    );
  }
}

export async function startHttpServer(runtime: Runtime): Promise<HttpServer> {
  const { config, logger } = runtime;
  assertSafeBind(config);
  const adapter = new FastifyAdapter({
    bodyLimit: config.server.bodyLimitBytes,
    requestTimeout: config.server.requestTimeoutMs,
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
  });
  const authenticator = new Authenticator(config);
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRuntime(runtime, authenticator),
    adapter,
    {
      bodyParser: false,
      logger: false,
    },
  );
  const fastify = app.getHttpAdapter().getInstance();
  // Malformed JSON reaches the route marked, so /mcp can answer with JSON-RPC -32700 rather than a bare 400.
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(null, MALFORMED_JSON);
    }
  });
  app.useGlobalFilters(new HttpErrorFilter(logger));
  await app.listen(config.server.port, config.server.host);
  const address = app.getHttpServer().address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/mcp`;
  authenticator.listeningAt(`http://${host}:${address.port}`, config.server.publicUrl);
  const mcp = app.get(McpHttpService);
  return {
    app,
    url,
    async close() {
      await mcp.close();
      await app.close();
      runtime.surface.watcher.close();
    },
  };
}
