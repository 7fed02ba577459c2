import { ServerResponse, type IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import helmet from 'helmet';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { BastionConfig } from '../config/config.schema.js';

/** Request headers a browser MCP client sends (MCP Streamable HTTP, authorization, tracing). */
const ALLOWED_HEADERS = [
  'accept',
  'authorization',
  'content-type',
  'last-event-id',
  'mcp-method',
  'mcp-name',
  'mcp-protocol-version',
  'mcp-session-id',
  'traceparent',
  'tracestate',
  'x-request-id',
];

/** Response headers a browser client must be able to read. */
const EXPOSED_HEADERS = [
  'mcp-protocol-version',
  'mcp-session-id',
  'retry-after',
  'www-authenticate',
  'x-ratelimit-limit-principal',
  'x-ratelimit-remaining-principal',
  'x-ratelimit-reset-principal',
  'x-request-id',
];

/**
 * Security headers on every response, refusals included. They are set on the raw response, so they also
 * reach /mcp answers that bypass the framework's reply.
 */
export function securityHeaders(fastify: FastifyInstance): void {
  const headers = helmet({
    contentSecurityPolicy: {
      directives: {
        // The API page (/docs) loads its own scripts and styles; nothing else is a page.
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // Plain http is a legitimate loopback deployment; HSTS belongs to the TLS terminator.
    strictTransportSecurity: false,
  });
  const fixed = staticHeaders(headers);
  fastify.addHook('onRequest', (_request, reply, done) => {
    for (const [name, value] of fixed) reply.raw.setHeader(name, value);
    done();
  });
}

/** CORS for the configured browser origins only (the gate has refused every other origin already). */
export function allowBrowserOrigins(app: NestFastifyApplication, config: BastionConfig): void {
  // Without allowed origins no browser may call: no CORS headers at all, and no per-request CORS work.
  if (config.server.allowedOrigins.length === 0) return;
  app.enableCors({
    origin: config.server.allowedOrigins,
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    credentials: false,
    maxAge: 600,
  });
}

/**
 * The headers helmet sets, computed once: its configuration here has no per-request part (no CSP nonces),
 * and setting a fixed list costs a fraction of running the middleware on every request.
 */
function staticHeaders(
  middleware: (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void,
): Array<[string, string]> {
  const probe = new ServerResponse({ method: 'GET', headers: {} } as IncomingMessage);
  middleware({ method: 'GET', headers: {} } as IncomingMessage, probe, () => undefined);
  return Object.entries(probe.getHeaders()).map(([name, value]) => [name, String(value)]);
}
