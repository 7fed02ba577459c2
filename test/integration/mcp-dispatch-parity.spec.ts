/**
 * Bastion answers the plain exchanges of both revisions itself (McpDispatch) and hands the rest to the
 * SDK. For every exchange it answers itself, its answer must be the SDK's answer: the same JSON-RPC
 * result or error, the same 2026-07-28 decorations (resultType, caching hints, server identity), the same
 * progress stream. Each request here goes to both, over real sockets, and the answers are compared whole.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createMcpHandler, type JSONRPCRequest } from '@modelcontextprotocol/server';
import pino from 'pino';
import type { Principal, Scope } from '../../src/auth/principal.js';
import { configSchema } from '../../src/config/config.schema.js';
import { ExchangeTransport } from '../../src/mcp/exchange-transport.js';
import { serveThroughFetch } from '../../src/mcp/fetch-bridge.js';
import { McpDispatch } from '../../src/mcp/mcp-dispatch.js';
import { createMcpServer } from '../../src/mcp/mcp-server.factory.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';

const logger = pino({ level: 'silent' });
let base: string;
let runtime: Runtime;
let http: Server;
let origin: string;

const principal = (...scopes: Scope[]): Principal => ({
  id: `parity-${scopes.join('+')}`,
  kind: 'api-key',
  scopes: new Set(scopes),
  tier: 'default',
});
const FULL = principal('files:read', 'files:write', 'agent');
const AGENT_ONLY = principal('agent');

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-parity-')));
  mkdirSync(path.join(base, 'ws/docs'), { recursive: true });
  writeFileSync(path.join(base, 'ws/notes.txt'), 'remember the milk\n');
  writeFileSync(path.join(base, 'ws/docs/guide.md'), '# Guide\n');
  const config = configSchema.parse({
    workspace: { root: path.join(base, 'ws') },
    dataDir: path.join(base, 'data'),
    audit: { enabled: false },
    log: { level: 'silent' },
  });
  runtime = await createRuntime(config, { logger });
  const dispatch = new McpDispatch(runtime.surface);
  const sdkModern = createMcpHandler(
    (ctx) => createMcpServer(runtime.surface, serving(whoOf(ctx.authInfo?.extra)), 'listen'),
    {
      legacy: 'reject',
    },
  );
  http = createServer((req, res) => void route(req, res, dispatch, sdkModern));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => http?.close(resolve));
  await runtime?.close();
  rmSync(base, { recursive: true, force: true });
});

const whoOf = (extra: unknown): Principal => (extra as { who?: Principal } | undefined)?.who ?? FULL;

function serving(who: Principal) {
  return { principal: who, sandbox: runtime.sandbox, logger, requestId: 'parity' };
}

/** `/native` answers with McpDispatch, `/sdk` with the SDK; `x-who: agent` asks as an agent-only key. */
async function route(
  req: IncomingMessage,
  res: ServerResponse,
  dispatch: McpDispatch,
  sdkModern: ReturnType<typeof createMcpHandler>,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString()) as JSONRPCRequest;
  const who = req.headers['x-who'] === 'agent' ? AGENT_ONLY : FULL;
  if (req.url === '/native') {
    const exchange = dispatch.classify(req, body);
    if (exchange?.kind !== 'request') return void res.writeHead(599).end('not a plain exchange');
    return dispatch.answer(exchange, res, { ...serving(who), logger });
  }
  if (req.headers['mcp-protocol-version'] === '2026-07-28') {
    return serveThroughFetch(sdkModern, req, res, body, {
      token: '',
      clientId: who.id,
      scopes: [],
      extra: { who },
    });
  }
  const server = createMcpServer(runtime.surface, serving(who));
  const transport = new ExchangeTransport(res, body.id);
  await server.connect(transport);
  transport.onmessage?.(body, {});
}

const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'parity', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

function request(era: 'legacy' | 'modern', method: string, params: Record<string, unknown>, who = 'full') {
  const modern = era === 'modern';
  const named =
    method === 'resources/read'
      ? params.uri
      : ['tools/call', 'prompts/get'].includes(method)
        ? params.name
        : undefined;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'x-who': who,
    ...(method !== 'initialize' && { 'mcp-protocol-version': modern ? '2026-07-28' : '2025-06-18' }),
    ...(modern && { 'mcp-method': method }),
    ...(modern && typeof named === 'string' && { 'mcp-name': named }),
  };
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 41,
    method,
    params: modern ? { ...params, _meta: { ...META, ...(params._meta as object) } } : params,
  });
  return { headers, body };
}

/** The answer of one side: status, content type, and the JSON-RPC messages (one, or the SSE events). */
async function ask(
  side: 'native' | 'sdk',
  era: 'legacy' | 'modern',
  method: string,
  params: Record<string, unknown>,
  who?: string,
) {
  const { headers, body } = request(era, method, params, who);
  const response = await fetch(`${origin}/${side}`, { method: 'POST', headers, body });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  const messages = type.includes('text/event-stream')
    ? text
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)) as unknown)
    : [JSON.parse(text) as unknown];
  return { status: response.status, stream: type.includes('text/event-stream'), messages };
}

// Every case names who asks: a two-element case would hand Jest's `done` to the test as the third.
type Case = [string, Record<string, unknown>, 'full' | 'agent'];

const BOTH: Case[] = [
  ['tools/list', {}, 'full'],
  ['tools/list', {}, 'agent'],
  ['tools/call', { name: 'read_text_file', arguments: { path: 'notes.txt' } }, 'full'],
  ['tools/call', { name: 'read_text_file', arguments: { path: '../outside.txt' } }, 'full'],
  ['tools/call', { name: 'read_text_file', arguments: { path: 'notes.txt' } }, 'agent'],
  ['tools/call', { name: 'no_such_tool', arguments: {} }, 'full'],
  ['tools/call', { name: 'read_text_file', arguments: { path: 7 } }, 'full'],
  ['resources/list', {}, 'full'],
  ['resources/list', {}, 'agent'],
  ['resources/list', { cursor: 'not-a-cursor' }, 'full'],
  ['resources/templates/list', {}, 'full'],
  ['resources/read', { uri: 'workspace:///notes.txt' }, 'full'],
  ['resources/read', { uri: 'workspace:///missing.txt' }, 'full'],
  ['resources/read', { uri: 'https://example.com/x' }, 'full'],
  ['resources/read', { uri: 'workspace:///notes.txt' }, 'agent'],
  ['prompts/list', {}, 'full'],
  ['prompts/list', {}, 'agent'],
  ['prompts/get', { name: 'review_file', arguments: { path: 'notes.txt' } }, 'full'],
  ['prompts/get', { name: 'review_file', arguments: {} }, 'full'],
  ['prompts/get', { name: 'no_such_prompt', arguments: {} }, 'full'],
  [
    'completion/complete',
    { ref: { type: 'ref/prompt', name: 'review_file' }, argument: { name: 'path', value: 'do' } },
    'full',
  ],
  [
    'completion/complete',
    { ref: { type: 'ref/resource', uri: 'workspace:///{+path}' }, argument: { name: 'path', value: 'no' } },
    'full',
  ],
];

describe('the dispatch answers exactly as the SDK would', () => {
  for (const era of ['legacy', 'modern'] as const) {
    it.each(BOTH)(`${era}: %s %j as %s`, async (method, params, who) => {
      const [native, sdk] = await Promise.all([
        ask('native', era, method, params, who),
        ask('sdk', era, method, params, who),
      ]);
      expect(native).toEqual(sdk);
    });
  }

  it.each([['2025-06-18'], ['2025-03-26'], ['2099-01-01']])(
    'legacy: initialize asking for %s',
    async (version) => {
      const params = {
        protocolVersion: version,
        capabilities: {},
        clientInfo: { name: 'parity', version: '1' },
      };
      const [native, sdk] = await Promise.all([
        ask('native', 'legacy', 'initialize', params),
        ask('sdk', 'legacy', 'initialize', params),
      ]);
      expect(native).toEqual(sdk);
    },
  );

  it.each([['ping'], ['logging/setLevel']])('legacy: %s', async (method) => {
    const params = method === 'ping' ? {} : { level: 'info' };
    const [native, sdk] = await Promise.all([
      ask('native', 'legacy', method, params),
      ask('sdk', 'legacy', method, params),
    ]);
    expect(native).toEqual(sdk);
  });

  it('modern: server/discover', async () => {
    const [native, sdk] = await Promise.all([
      ask('native', 'modern', 'server/discover', {}),
      ask('sdk', 'modern', 'server/discover', {}),
    ]);
    expect(native).toEqual(sdk);
  });

  it.each(['legacy', 'modern'] as const)(
    '%s: a converse turn streams the same progress, then the same answer shape',
    async (era) => {
      const params = {
        name: 'converse',
        arguments: { prompt: 'read notes.txt' },
        _meta: { progressToken: 'p1' },
      };
      const [native, sdk] = await Promise.all([
        ask('native', era, 'tools/call', params),
        ask('sdk', era, 'tools/call', params),
      ]);
      expect(native.stream).toBe(true);
      // Each turn is a new conversation: its id differs, everything else is the same.
      const strip = (answer: typeof native) =>
        JSON.parse(
          JSON.stringify(answer.messages).replace(
            /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g,
            'ID',
          ),
        );
      expect({ ...native, messages: strip(native) }).toEqual({ ...sdk, messages: strip(sdk) });
    },
  );

  it('leaves to the SDK what it does not answer itself', () => {
    const dispatch = new McpDispatch(runtime.surface);
    const req = (headers: Record<string, string>) =>
      ({
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
      }) as unknown as IncomingMessage;
    const modern = (method: string, name?: string) =>
      req({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...(name && { 'mcp-name': name }) });
    const body = (method: string, params: Record<string, unknown> = {}) => ({
      jsonrpc: '2.0',
      id: 1,
      method,
      params: { ...params, _meta: META },
    });
    const call = body('tools/call', { name: 'read_text_file', arguments: {} });
    expect(dispatch.classify(modern('tools/call', 'read_text_file'), call)).toMatchObject({
      era: 'modern',
      kind: 'request',
    });
    // Headers the SDK would refuse: missing or mismatched Mcp-Name, mismatched Mcp-Method.
    expect(dispatch.classify(modern('tools/call'), call)).toBeNull();
    expect(dispatch.classify(modern('tools/call', 'write_file'), call)).toBeNull();
    expect(dispatch.classify(modern('tools/list'), call)).toBeNull();
    // Methods it does not answer, batches, GET, and a 2025 request with a malformed shape.
    expect(
      dispatch.classify(modern('subscriptions/listen'), body('subscriptions/listen', { notifications: {} })),
    ).toBeNull();
    expect(dispatch.classify(modern('ping'), body('ping'))).toBeNull();
    expect(dispatch.classify(req({}), [{ jsonrpc: '2.0', id: 1, method: 'ping' }])).toBeNull();
    expect(dispatch.classify({ ...req({}), method: 'GET' } as IncomingMessage, undefined)).toBeNull();
    const legacy = req({ 'mcp-protocol-version': '2025-06-18' });
    expect(
      dispatch.classify(legacy, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { arguments: {} } }),
    ).toBeNull();
    expect(
      dispatch.classify(legacy, {
        jsonrpc: '2.0',
        id: 1,
        method: 'resources/subscribe',
        params: { uri: 'x' },
      }),
    ).toBeNull();
    expect(
      dispatch.classify(req({ 'mcp-protocol-version': '1999-01-01' }), {
        jsonrpc: '2.0',
        id: 1,
        method: 'ping',
      }),
    ).toBeNull();
    expect(dispatch.classify(legacy, { jsonrpc: '2.0', method: 'notifications/initialized' })).toEqual({
      era: 'legacy',
      kind: 'notification',
    });
  });
});
