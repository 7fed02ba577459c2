import pino from 'pino';
import { configSchema } from '../../src/config/config.schema.js';
import { startHttpServer, type HttpServer } from '../../src/main.js';
import { createRuntime } from '../../src/runtime.js';

/** Starts Bastion's HTTP server in-process on an ephemeral loopback port. */
export async function startTestServer(
  workspace: string,
  overrides: Record<string, unknown> = {},
): Promise<HttpServer> {
  const config = configSchema.parse({
    // Without a data directory of its own, a test server keeps no audit log (it would land in the repo).
    ...(overrides.dataDir ? {} : { audit: { enabled: false } }),
    ...overrides,
    server: { port: 0, ...(overrides.server as object) },
    workspace: { root: workspace, ...(overrides.workspace as object) },
    log: { level: 'silent' },
  });
  const runtime = await createRuntime(config, { logger: pino({ level: 'silent' }) });
  return startHttpServer(runtime);
}

/** POSTs one 2025-06-18 JSON-RPC message to /mcp as a client would, with an optional Authorization header. */
export function postMcp(url: string, message: unknown, authorization?: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-06-18',
      ...(authorization ? { authorization } : {}),
    },
    body: JSON.stringify(message),
  });
}
