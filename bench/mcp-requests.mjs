// Request shapes and response checks shared by the bench harness (run.mjs, load.mjs, profile.mjs).
import { parseRpc as parseRpcText } from '../load/lib/protocol.js';
import { benchText } from '../load/lib/workload.js';

// The bench file is the load scripts' k6/bench.txt: 4 KiB of plain ASCII (64-byte lines), easy to compare.
export { benchText };

export const LEGACY = '2025-06-18';
export const MODERN = '2026-07-28';
export const BENCH_FILE = 'bench.txt';
export const CLIENT_INFO = { name: 'bastion-bench', version: '0.1.0' };

const ACCEPT = 'application/json, text/event-stream';

/** 2025-06-18 (legacy era, served by the SDK's stateless fallback): a plain JSON-RPC POST. */
export function legacyRequest(method, params, id = 1) {
  const headers = { 'content-type': 'application/json', accept: ACCEPT };
  // Like the SDK client: the version header goes on every request after initialize.
  if (method !== 'initialize') headers['mcp-protocol-version'] = LEGACY;
  const message = id === null ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', id, method };
  if (params !== undefined) message.params = params;
  return { method: 'POST', headers, body: JSON.stringify(message) };
}

export const legacyToolCall = (id = 1) =>
  legacyRequest('tools/call', { name: 'read_text_file', arguments: { path: BENCH_FILE } }, id);

/**
 * `converse` arguments of the bench: the rules provider reads the bench file and quotes it. Without a
 * conversation_id every call starts (and stores) a new conversation.
 */
export const CONVERSE_ARGS = { prompt: `read ${BENCH_FILE}` };

export const legacyInitialize = (id = 1) =>
  legacyRequest('initialize', { protocolVersion: LEGACY, capabilities: {}, clientInfo: CLIENT_INFO }, id);

export const legacyInitialized = () => legacyRequest('notifications/initialized', undefined, null);

/**
 * 2026-07-28 (modern era). This is what @modelcontextprotocol/client 2.4 sends for `callTool` after
 * `versionNegotiation: { mode: { pin: '2026-07-28' } }` (captured with a custom fetch): no initialize, a
 * per-request `_meta` envelope, and the SEP-2243 standard headers. run.mjs captures the live shape from
 * the SDK at start and uses that; this copy is the fallback and documents the shape.
 */
export function modernRequest(method, params, id = 0, nameHeader) {
  const headers = {
    accept: ACCEPT,
    'content-type': 'application/json',
    'mcp-method': method,
    ...(nameHeader ? { 'mcp-name': nameHeader } : {}),
    'mcp-protocol-version': MODERN,
  };
  const _meta = {
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
    'io.modelcontextprotocol/clientCapabilities': {},
  };
  const body = JSON.stringify({ method, params: { ...params, _meta }, jsonrpc: '2.0', id });
  return { method: 'POST', headers, body };
}

export const modernToolCall = (id = 0) =>
  modernRequest(
    'tools/call',
    { name: 'read_text_file', arguments: { path: BENCH_FILE } },
    id,
    'read_text_file',
  );

/**
 * The same request calling another tool: for replaying a captured SDK tools/call with other arguments.
 * The tool name is in the body and, for 2026-07-28, in the `mcp-name` header.
 */
export function retarget(request, name, args) {
  const message = JSON.parse(request.body);
  message.params = { ...message.params, name, arguments: args };
  const headers = { ...request.headers };
  for (const key of Object.keys(headers)) if (key.toLowerCase() === 'mcp-name') headers[key] = name;
  return { ...request, headers, body: JSON.stringify(message) };
}

export const modernDiscover = (id = 'server-discover-probe-1') => modernRequest('server/discover', {}, id);

/**
 * The JSON-RPC message in a response body: plain JSON, or the last `data:` line of an SSE stream
 * (2025 revisions answer POSTs with text/event-stream when the client accepts it).
 */
export function parseRpc(body) {
  return parseRpcText(typeof body === 'string' ? body : String(body));
}

/**
 * null when the body is a successful `converse` result whose answer holds `expectedText`; otherwise a short
 * reason.
 */
export function checkAnswer(body, expectedText) {
  const reason = checkResult(body);
  if (reason !== null) return reason;
  const answer = parseRpc(body).result.structuredContent?.answer;
  if (typeof answer !== 'string') return 'no answer in the converse result';
  return answer.includes(expectedText) ? null : 'the answer does not hold the file text';
}

/**
 * null when the body is a successful JSON-RPC result (and, with expectedText, a tool result whose first
 * text block is exactly that text); otherwise a short reason.
 */
export function checkResult(body, expectedText) {
  let message;
  try {
    message = parseRpc(body);
  } catch (error) {
    return `unparseable: ${error.message}`;
  }
  if (message.error) return `json-rpc error ${message.error.code}: ${message.error.message}`;
  if (!message.result) return 'no result';
  if (message.result.isError) return `tool error: ${message.result.content?.[0]?.text ?? '?'}`;
  if (expectedText !== undefined) {
    const text = message.result.content?.[0]?.text;
    if (text !== expectedText) return 'tool result does not contain the file text';
  }
  return null;
}
