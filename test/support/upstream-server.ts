/**
 * A Streamable HTTP MCP server on 127.0.0.1 to stand behind Bastion as an upstream, built on the official
 * SDK 1.x (what most upstreams in the wild run). It records what reaches it and can be told to misbehave:
 *
 *   const upstream = await TestUpstream.start();
 *   // config: { type: 'http', url: upstream.url, headers: { Authorization: 'Bearer ${env:UPSTREAM_TOKEN}' } }
 *   upstream.failNext(2);             // the next 2 tools/call requests get HTTP 503
 *   expect(upstream.requests[0].headers.authorization).toBe('Bearer upstream-token');
 *   expect(upstream.calls.echo).toBe(1);
 *   await upstream.close();
 *
 * Tools: echo (read-only), write (neither read-only nor idempotent), hang (answers only when cancelled, and
 * counts the cancellation), big (a text of `bytes` bytes), progress (`steps` progress notifications).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface UpstreamRequest {
  method: string;
  headers: IncomingHttpHeaders;
  /** The JSON-RPC method of a POST, when it had one. */
  rpc?: string;
}

export class TestUpstream {
  readonly requests: UpstreamRequest[] = [];
  /** tools/call requests that reached a tool, by tool name. */
  readonly calls: Record<string, number> = {};
  /** hang calls whose cancellation reached the tool. */
  cancelled = 0;
  private failures = 0;
  private readonly sessions = new Map<string, StreamableHTTPServerTransport>();

  private constructor(private readonly server: Server) {}

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/mcp`;
  }

  /** Sessions opened so far (one per pooled client of Bastion's). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  static async start(port = 0): Promise<TestUpstream> {
    const server = createServer();
    const upstream = new TestUpstream(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const body = text ? (JSON.parse(text) as { method?: string }) : undefined;
        upstream.requests.push({
          method: req.method ?? '',
          headers: req.headers,
          ...(body?.method && { rpc: body.method }),
        });
        if (body?.method === 'tools/call' && upstream.failures > 0) {
          upstream.failures -= 1;
          res.writeHead(503).end('unavailable');
          return;
        }
        void upstream.transportFor(req.headers, body).then((transport) => {
          if (!transport)
            res
              .writeHead(404)
              .end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
          else void transport.handleRequest(req, res, body);
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return upstream;
  }

  /** The next `count` tools/call requests are answered with HTTP 503 before reaching a tool. */
  failNext(count: number): void {
    this.failures = count;
  }

  async close(): Promise<void> {
    for (const transport of this.sessions.values()) await transport.close().catch(() => undefined);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async transportFor(
    headers: IncomingHttpHeaders,
    body: { method?: string } | undefined,
  ): Promise<StreamableHTTPServerTransport | undefined> {
    const id = headers['mcp-session-id'];
    if (typeof id === 'string') return this.sessions.get(id);
    if (body?.method !== 'initialize') return undefined;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sessionId) => void this.sessions.set(sessionId, transport),
    });
    await this.mcpServer().connect(transport);
    return transport;
  }

  private mcpServer(): McpServer {
    const server = new McpServer({ name: 'test-upstream', version: '1.0.0' });
    const count = (tool: string) => (this.calls[tool] = (this.calls[tool] ?? 0) + 1);
    server.registerTool(
      'echo',
      {
        description: 'Says the text back.',
        inputSchema: { text: z.string() },
        annotations: { readOnlyHint: true },
      },
      ({ text }) => {
        count('echo');
        return { content: [{ type: 'text', text }] };
      },
    );
    server.registerTool(
      'write',
      {
        description: 'Pretends to change something.',
        inputSchema: { value: z.string() },
        annotations: { readOnlyHint: false, idempotentHint: false, destructiveHint: false },
      },
      ({ value }) => {
        count('write');
        return { content: [{ type: 'text', text: `wrote ${value}` }] };
      },
    );
    server.registerTool(
      'hang',
      { description: 'Never answers unless cancelled.', annotations: { readOnlyHint: true } },
      (extra) => {
        count('hang');
        return new Promise((resolve) => {
          extra.signal.addEventListener('abort', () => {
            this.cancelled += 1;
            resolve({ content: [{ type: 'text', text: 'cancelled' }] });
          });
        });
      },
    );
    server.registerTool(
      'big',
      {
        description: 'Answers with a text of the given size.',
        inputSchema: { bytes: z.number().int().positive() },
        annotations: { readOnlyHint: true },
      },
      ({ bytes }) => {
        count('big');
        return { content: [{ type: 'text', text: 'x'.repeat(bytes) }] };
      },
    );
    server.registerTool(
      'progress',
      {
        description: 'Reports progress, then answers.',
        inputSchema: { steps: z.number().int().positive().max(20) },
        annotations: { readOnlyHint: true },
      },
      async ({ steps }, extra) => {
        count('progress');
        const token = extra._meta?.progressToken;
        for (let i = 1; i <= steps && token !== undefined; i++) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress: i, total: steps },
          });
        }
        return { content: [{ type: 'text', text: `${steps} steps` }] };
      },
    );
    return server;
  }
}
