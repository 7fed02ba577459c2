// The reference server of `npm run bench`: the official MCP TypeScript SDK v1 (@modelcontextprotocol/sdk,
// a dev dependency) wired as its own Streamable HTTP example wires it (express, one transport per session,
// sessions kept in a map), serving one tool that reads the bench file into the same result Bastion gives:
// the text block and its structured copy.
//
//   node bench/reference-sdk-v1.mjs <port> <workspace>     prints "serving MCP at http://127.0.0.1:<port>/mcp"
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import express from 'express';
import { z } from 'zod';

const [port, workspace] = process.argv.slice(2);

function server() {
  const mcp = new McpServer({ name: 'sdk-v1-reference', version: '1.0.0' });
  mcp.registerTool(
    'read_text_file',
    {
      description: 'Read a file of the workspace as text.',
      inputSchema: { path: z.string() },
      outputSchema: { content: z.string() },
    },
    async ({ path: file }) => {
      const content = await readFile(path.join(workspace, path.basename(file)), 'utf8');
      return { content: [{ type: 'text', text: content }], structuredContent: { content } };
    },
  );
  return mcp;
}

const app = express();
app.use(express.json({ limit: '4mb' }));
const transports = {};

app.post('/mcp', async (req, res) => {
  const sessionId = req.headers['mcp-session-id'];
  let transport = sessionId ? transports[sessionId] : undefined;
  if (!transport) {
    if (sessionId || !isInitializeRequest(req.body)) {
      res
        .status(400)
        .json({ jsonrpc: '2.0', error: { code: -32000, message: 'No valid session' }, id: null });
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => (transports[id] = transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) delete transports[transport.sessionId];
    };
    await server().connect(transport);
  }
  await transport.handleRequest(req, res, req.body);
});

const session = async (req, res) => {
  const transport = transports[req.headers['mcp-session-id']];
  if (!transport) return void res.status(400).send('No valid session');
  await transport.handleRequest(req, res);
};
app.get('/mcp', session);
app.delete('/mcp', session);

app.listen(Number(port), '127.0.0.1', () => {
  process.stderr.write(`serving MCP at http://127.0.0.1:${port}/mcp\n`);
});
