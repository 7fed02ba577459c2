import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RouteAccess } from '../auth/route-access.js';
import type { BastionConfig } from '../config/config.schema.js';
import { VERSION } from '../mcp/server-info.js';
import { loadSwagger } from './api-docs.js';
import { sendAnswer } from './error-answer.js';

const PUBLIC: RouteAccess = { kind: 'public', limited: true };
const AUTHENTICATED: RouteAccess = { kind: 'principal' };

/** The Swagger UI files the page loads, served from swagger-ui-dist; nothing else of it is reachable. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

/**
 * The REST routes described as OpenAPI at /openapi.json, with a browsable page at /docs. Like every route
 * they need a credential (the gate decides, on the matched route) unless `docs.public` is set. The document
 * is built, and @nestjs/swagger loaded, at the first request for it, not at start: most servers are never
 * asked.
 */
export function serveOpenApi(app: NestFastifyApplication, config: BastionConfig): void {
  if (!config.docs.enabled) return;
  const fastify = app.getHttpAdapter().getInstance() as FastifyInstance;
  const routeConfig = { bastionAccess: config.docs.public ? PUBLIC : AUTHENTICATED };
  const document = once(() => buildDocument(app));
  const initScript = once(async () => swaggerInit(await document()));
  fastify.get('/openapi.json', { config: routeConfig }, async (_request, reply) =>
    reply.type('application/json; charset=utf-8').send(await document()),
  );
  // /docs and /docs/ are one route (the router ignores a trailing slash); the page's links are relative.
  fastify.get('/docs', { config: routeConfig }, async (request, reply) => {
    const base = (request.url.split('?')[0] ?? '').endsWith('/') ? './' : './docs/';
    return reply.type('text/html; charset=utf-8').send(page(base));
  });
  fastify.get('/docs/:file', { config: routeConfig }, async (request, reply) => {
    const { file } = request.params as { file: string };
    if (file === 'index.html') return reply.type('text/html; charset=utf-8').send(page('./'));
    if (file === 'swagger-ui-init.js')
      return reply.type('application/javascript; charset=utf-8').send(await initScript());
    return sendAsset(request, reply, file);
  });
}

async function buildDocument(app: NestFastifyApplication): Promise<string> {
  const { DocumentBuilder, SwaggerModule } = await loadSwagger();
  const description = new DocumentBuilder()
    .setTitle('Bastion')
    .setDescription(
      'Operations routes of the Bastion MCP server. MCP itself is served at /mcp (Streamable HTTP, JSON-RPC).',
    )
    .setVersion(VERSION)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An API key or an OAuth access token' })
    .build();
  return JSON.stringify(SwaggerModule.createDocument(app, description));
}

function page(base: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>Bastion API</title>
  <link rel="stylesheet" href="${base}swagger-ui.css">
  <link rel="icon" type="image/png" href="${base}favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="${base}favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${base}swagger-ui-bundle.js"></script>
  <script src="${base}swagger-ui-init.js"></script>
</body>
</html>
`;
}

/** The page's start script, with the document inlined (the page needs no second authenticated fetch). */
function swaggerInit(document: string): string {
  return `window.onload = function () {
  window.ui = SwaggerUIBundle({
    spec: ${document},
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
};
`;
}

const assetsDir = once(async () => {
  // swagger-ui-dist comes with @nestjs/swagger; resolved from there, as that package resolves it.
  const fromSwagger = createRequire(createRequire(import.meta.url).resolve('@nestjs/swagger/package.json'));
  return path.dirname(fromSwagger.resolve('swagger-ui-dist/package.json'));
});

async function sendAsset(request: FastifyRequest, reply: FastifyReply, file: string): Promise<FastifyReply> {
  const type = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
  if (type === undefined)
    return sendAnswer(request, reply, { status: 404, code: 'not_found', message: 'Not found.' });
  const stream = createReadStream(path.join(await assetsDir(), file));
  return reply.type(type).header('cache-control', 'public, max-age=86400').send(stream);
}

/** The first call's promise, for every call: built once, on demand; a failure is retried next time. */
function once<T>(build: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= build().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}
