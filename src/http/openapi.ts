import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance } from 'fastify';
import type { RouteAccess } from '../auth/route-access.js';
import type { BastionConfig } from '../config/config.schema.js';
import { VERSION } from '../mcp/server-info.js';

const PUBLIC: RouteAccess = { kind: 'public', limited: true };

/**
 * The REST routes described as OpenAPI at /openapi.json, with a browsable page at /docs. Like every route
 * they need a credential (the gate decides, on the matched route) unless `docs.public` is set, which marks
 * these routes public as they are registered.
 */
export function serveOpenApi(app: NestFastifyApplication, config: BastionConfig): void {
  if (!config.docs.enabled) return;
  if (config.docs.public) markDocsPublic(app.getHttpAdapter().getInstance() as FastifyInstance);
  const description = new DocumentBuilder()
    .setTitle('Bastion')
    .setDescription(
      'Operations routes of the Bastion MCP server. MCP itself is served at /mcp (Streamable HTTP, JSON-RPC).',
    )
    .setVersion(VERSION)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An API key or an OAuth access token' })
    .build();
  // Built at the first request for it, not at start: most servers are never asked.
  const document = () => SwaggerModule.createDocument(app, description);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'openapi.json', raw: ['json'] });
}

function markDocsPublic(fastify: FastifyInstance): void {
  fastify.addHook('onRoute', (route) => {
    const docs = route.url === '/openapi.json' || route.url === '/docs' || route.url.startsWith('/docs/');
    if (docs) route.config = { ...(route.config as object), bastionAccess: PUBLIC };
  });
}
