import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { configSchema } from '../../src/config/config.schema.js';
import { startHttpServer, type HttpServer } from '../../src/main.js';
import { createRuntime } from '../../src/runtime.js';

/** Starts Bastion's HTTP server in-process on an ephemeral loopback port. */
export async function startTestServer(
  workspace: string,
  overrides: Record<string, unknown> = {},
): Promise<HttpServer> {
  // Without a data directory of its own, a test server keeps its state in a throwaway one, and no audit log.
  const scratch = overrides.dataDir ? undefined : mkdtempSync(path.join(os.tmpdir(), 'bastion-data-'));
  const config = configSchema.parse({
    ...(scratch && { audit: { enabled: false }, dataDir: scratch }),
    ...overrides,
    server: { port: 0, ...(overrides.server as object) },
    workspace: { root: workspace, ...(overrides.workspace as object) },
    log: { level: 'silent' },
  });
  const runtime = await createRuntime(config, { logger: pino({ level: 'silent' }) });
  const server = await startHttpServer(runtime);
  if (!scratch) return server;
  return {
    ...server,
    async close(graceMs?: number) {
      const drained = await server.close(graceMs);
      rmSync(scratch, { recursive: true, force: true });
      return drained;
    },
  };
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
