import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { HttpServer } from '../../src/main.js';
import { startTestServer } from '../support/http-server.js';
import { createWorkspaceFixture, type WorkspaceFixture } from '../support/workspace-fixture.js';

let ws: WorkspaceFixture;
const servers: HttpServer[] = [];

beforeAll(async () => {
  ws = await createWorkspaceFixture();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(0)));
  ws.cleanup();
});

async function start(overrides: Record<string, unknown>): Promise<HttpServer> {
  const server = await startTestServer(ws.root, overrides);
  servers.push(server);
  return server;
}

const probe = (server: HttpServer, path: string) => fetch(new URL(path, server.url));

describe('health probes', () => {
  it('are public even when every other route needs credentials, and reveal nothing but up or down', async () => {
    const server = await start({ auth: { mode: 'api-key' }, dataDir: `${ws.base}/data` });
    const live = await probe(server, '/health/live');
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    const ready = await probe(server, '/health/ready');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok' });
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(401);
  });

  it('reports not ready when free disk space is below the threshold', async () => {
    const server = await start({ health: { minFreeDiskBytes: Number.MAX_SAFE_INTEGER } });
    const ready = await probe(server, '/health/ready');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'unavailable' });
    expect((await probe(server, '/health/live')).status).toBe(200);
  });

  it('reports not ready when heap use is above the threshold', async () => {
    const server = await start({ health: { maxHeapBytes: 1024 } });
    expect((await probe(server, '/health/ready')).status).toBe(503);
  });

  it('reports not ready when the workspace is gone', async () => {
    const doomed = await createWorkspaceFixture();
    const server = await start({});
    const other = await startTestServer(doomed.root, {});
    servers.push(other);
    expect((await probe(other, '/health/ready')).status).toBe(200);
    doomed.cleanup();
    expect((await probe(other, '/health/ready')).status).toBe(503);
    expect((await probe(server, '/health/ready')).status).toBe(200);
  });

  it('exposes readiness to Prometheus as bastion_ready, computed at each scrape', async () => {
    const doomed = await createWorkspaceFixture();
    const server = await startTestServer(doomed.root, {});
    servers.push(server);
    const readyGauge = async () => {
      const text = await (await probe(server, '/metrics')).text();
      return /^bastion_ready (\d+)$/m.exec(text)?.[1];
    };
    expect(await readyGauge()).toBe('1');
    doomed.cleanup();
    expect(await readyGauge()).toBe('0');
  });
});
