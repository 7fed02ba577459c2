import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { HttpServer } from '../../src/main.js';
import { startTestServer } from '../support/http-server.js';
import { createWorkspaceFixture, type WorkspaceFixture } from '../support/workspace-fixture.js';

let ws: WorkspaceFixture;
let server: HttpServer;

beforeAll(async () => {
  ws = await createWorkspaceFixture();
  server = await startTestServer(ws.root, {
    server: { bodyLimitBytes: 64 * 1024, allowedOrigins: ['https://app.example.com'] },
  });
});
afterAll(async () => {
  await server.close();
  ws.cleanup();
});

const MCP_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};

function post(body: string, headers: Record<string, string> = {}) {
  return fetch(server.url, { method: 'POST', headers: { ...MCP_HEADERS, ...headers }, body });
}

async function errorCode(response: Response): Promise<number | undefined> {
  const text = await response.text();
  const json = text.startsWith('event:')
    ? JSON.parse(
        text
          .split('\n')
          .find((l) => l.startsWith('data: '))!
          .slice(6),
      )
    : JSON.parse(text);
  return json.error?.code;
}

describe('Streamable HTTP at /mcp: malformed and hostile requests', () => {
  it('answers a body that is not JSON with 400 and -32700', async () => {
    const response = await post('{"jsonrpc": "2.0", "id": 1, "method": ');
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe(-32700);
  });

  it('answers a JSON value that is not a JSON-RPC message with -32600', async () => {
    const response = await post('{"hello": "world"}');
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(await errorCode(response)).toBe(-32600);
  });

  it('refuses a body over the limit with 413 before parsing it', async () => {
    const big = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
      params: { pad: 'x'.repeat(100 * 1024) },
    });
    const response = await post(big);
    expect(response.status).toBe(413);
    expect(await errorCode(response)).toBe(-32600);
  });

  it('refuses a foreign Origin with 403 (DNS rebinding) and admits a configured one', async () => {
    const ping = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    });
    expect((await post(ping, { origin: 'http://evil.example.com' })).status).toBe(403);
    expect((await post(ping, { origin: 'https://app.example.com' })).status).toBe(200);
    expect((await post(ping, { origin: 'http://localhost:5173' })).status).toBe(200);
  });

  it('refuses a foreign Host header on a loopback bind', async () => {
    const { request } = await import('node:http');
    const url = new URL(server.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: '/mcp',
          method: 'POST',
          headers: { ...MCP_HEADERS, host: 'evil.example.com' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    expect(status).toBe(403);
  });

  it('answers 415 for a body that is not application/json', async () => {
    const response = await post('x', { 'content-type': 'text/plain' });
    expect(response.status).toBe(415);
  });

  it('answers 405 where a method is not served (no sessions: GET and DELETE)', async () => {
    expect(
      (
        await fetch(server.url, {
          method: 'GET',
          headers: { accept: 'text/event-stream', 'mcp-protocol-version': '2025-06-18' },
        })
      ).status,
    ).toBe(405);
    expect(
      (await fetch(server.url, { method: 'DELETE', headers: { 'mcp-protocol-version': '2025-06-18' } }))
        .status,
    ).toBe(405);
  });

  it('answers an unknown tool with -32602', async () => {
    const response = await post(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'rm_rf', arguments: {} },
      }),
    );
    expect(await errorCode(response)).toBe(-32602);
  });

  it('answers a single 2025-era request with one JSON body echoing its id', async () => {
    const response = await post(JSON.stringify({ jsonrpc: '2.0', id: 'list-1', method: 'tools/list' }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    const body = (await response.json()) as { id: unknown; result: { tools: unknown[] } };
    expect(body.id).toBe('list-1');
    expect(body.result.tools.length).toBeGreaterThan(10);
  });

  it('acknowledges a 2025-era notification with 202 and no body', async () => {
    const response = await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    expect(response.status).toBe(202);
    expect(await response.text()).toBe('');
  });

  it('answers 406 when the client does not accept both JSON and SSE', async () => {
    const response = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), {
      accept: 'application/json',
    });
    expect(response.status).toBe(406);
  });

  it('answers 400 for an MCP-Protocol-Version it does not serve', async () => {
    const response = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), {
      'mcp-protocol-version': '1999-01-01',
    });
    expect(response.status).toBe(400);
  });

  it('answers a 2025-03-26 batch with one response per request', async () => {
    const response = await post(
      JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'ping' },
        { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      ]),
      { 'mcp-protocol-version': '2025-03-26' },
    );
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('"id":1');
    expect(text).toContain('"id":2');
  });

  it('answers unknown routes with a JSON 404', async () => {
    const response = await fetch(server.url.replace('/mcp', '/nope'));
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain('application/json');
  });
});
