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
    server: { port: 0, ...(overrides.server as object) },
    workspace: { root: workspace, ...(overrides.workspace as object) },
    log: { level: 'silent' },
  });
  const runtime = await createRuntime(config, pino({ level: 'silent' }));
  return startHttpServer(runtime);
}
