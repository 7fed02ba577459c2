import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthFailure } from '../auth/auth.errors.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { BastionConfig } from '../config/config.schema.js';
import { VERSION } from '../mcp/server-info.js';

const DOC_PATHS = ['/openapi.json', '/docs'];

/**
 * The REST routes described as OpenAPI at /openapi.json, with a browsable page at /docs. They need a
 * credential like any other route unless `docs.public` is set (a loopback server without authentication
 * serves them to anyone local).
 */
export function serveOpenApi(
  app: NestFastifyApplication,
  config: BastionConfig,
  authenticator: Authenticator,
): void {
  if (!config.docs.enabled) return;
  if (!config.docs.public) gate(app.getHttpAdapter().getInstance() as FastifyInstance, authenticator);
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Bastion')
      .setDescription(
        'Operations routes of the Bastion MCP server. MCP itself is served at /mcp (Streamable HTTP, JSON-RPC).',
      )
      .setVersion(VERSION)
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An API key or an OAuth access token' })
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'openapi.json', raw: ['json'] });
}

/** These routes live outside the application's guards, so they get the same check here. */
function gate(fastify: FastifyInstance, authenticator: Authenticator): void {
  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '';
    if (!DOC_PATHS.some((doc) => path === doc || path.startsWith(`${doc}/`))) return;
    try {
      await authenticator.authenticate(request.headers.authorization);
    } catch (error) {
      if (!(error instanceof AuthFailure)) throw error;
      await reply
        .code(401)
        .headers({ 'content-type': 'application/json', 'www-authenticate': error.challenge })
        .send(JSON.stringify({ error: 'unauthorized', message: error.message }));
    }
  });
}
