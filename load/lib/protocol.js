// @ts-check
// MCP over Streamable HTTP as plain data: request builders and response readers for both revisions Bastion
// serves. No k6 import, no Node import: k6 scripts, the `npm run bench` load generator and the tests all use
// this file, so the three send the same bytes.

export const LEGACY = '2025-06-18';
export const MODERN = '2026-07-28';
export const REVISIONS = [LEGACY, MODERN];
export const CLIENT_INFO = { name: 'bastion-load', version: '0.1.0' };

const ACCEPT = 'application/json, text/event-stream';

/**
 * @typedef {{ [name: string]: string }} Headers
 * @typedef {{ headers: Headers, body: string }} McpRequest
 * @typedef {{ code?: number, message?: string }} RpcError
 * @typedef {{ type?: string, text?: string }} ContentBlock
 * @typedef {{ content?: ContentBlock[], structuredContent?: any, isError?: boolean }} ToolResult
 * @typedef {{ jsonrpc?: string, id?: string | number | null, result?: any, error?: RpcError }} RpcMessage
 */

/**
 * @param {string | undefined} apiKey
 * @returns {Headers}
 */
function authorization(apiKey) {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

/**
 * A 2025-06-18 JSON-RPC POST. The version header goes on every request after initialize, as the SDK
 * client sends it (spec 2025-06-18, basic/transports: protocol version header).
 * @param {string} method
 * @param {object | undefined} params
 * @param {number | null} id null for a notification
 * @param {string} [apiKey]
 * @returns {McpRequest}
 */
export function legacyRequest(method, params, id, apiKey) {
  /** @type {Headers} */
  const headers = { 'content-type': 'application/json', accept: ACCEPT, ...authorization(apiKey) };
  if (method !== 'initialize') headers['mcp-protocol-version'] = LEGACY;
  /** @type {{ jsonrpc: string, id?: number, method: string, params?: object }} */
  const message = id === null ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', id, method };
  if (params !== undefined) message.params = params;
  return { headers, body: JSON.stringify(message) };
}

/**
 * @param {number} [id]
 * @param {string} [apiKey]
 */
export const initializeRequest = (id = 1, apiKey = undefined) =>
  legacyRequest(
    'initialize',
    { protocolVersion: LEGACY, capabilities: {}, clientInfo: CLIENT_INFO },
    id,
    apiKey,
  );

/** @param {string} [apiKey] */
export const initializedNotification = (apiKey = undefined) =>
  legacyRequest('notifications/initialized', undefined, null, apiKey);

/**
 * A 2026-07-28 request: stateless, no initialize; the client's version, info and capabilities travel in
 * every request's `_meta`, and the method (and tool name) are repeated in the `Mcp-Method` and `Mcp-Name`
 * headers (SEP-2243), as bench/mcp-requests.mjs documents from the SDK client's own requests.
 * @param {string} method
 * @param {object} params
 * @param {number | string} id
 * @param {string | undefined} name the `Mcp-Name` header: the tool name of a tools/call
 * @param {string} [apiKey]
 * @returns {McpRequest}
 */
export function modernRequest(method, params, id, name, apiKey) {
  /** @type {Headers} */
  const headers = {
    accept: ACCEPT,
    'content-type': 'application/json',
    'mcp-method': method,
    ...(name ? { 'mcp-name': name } : {}),
    'mcp-protocol-version': MODERN,
    ...authorization(apiKey),
  };
  const _meta = {
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
    'io.modelcontextprotocol/clientCapabilities': {},
  };
  return { headers, body: JSON.stringify({ method, params: { ...params, _meta }, jsonrpc: '2.0', id }) };
}

/**
 * A tools/call in either revision.
 * @param {string} revision LEGACY or MODERN
 * @param {string} name
 * @param {object} args
 * @param {{ id?: number, apiKey?: string }} [options]
 * @returns {McpRequest}
 */
export function toolCallRequest(revision, name, args, options = {}) {
  const id = options.id ?? 1;
  const params = { name, arguments: args };
  if (revision === LEGACY) return legacyRequest('tools/call', params, id, options.apiKey);
  if (revision === MODERN) return modernRequest('tools/call', params, id, name, options.apiKey);
  throw new Error(`unknown MCP revision ${JSON.stringify(revision)}`);
}

/**
 * The JSON-RPC message in a response body: plain JSON, or the last `data:` line of an SSE stream (a
 * 2025 server may answer a POST with text/event-stream, progress and log messages first).
 * @param {string} body
 * @returns {RpcMessage}
 */
export function parseRpc(body) {
  const trimmed = body.trimStart();
  if (trimmed.startsWith('{')) return JSON.parse(trimmed);
  /** @type {string | null} */
  let data = null;
  for (const line of body.split('\n')) {
    if (line.startsWith('data:')) data = line.slice(5).trim();
  }
  if (data === null) throw new Error('no JSON-RPC message in the response body');
  return JSON.parse(data);
}

/**
 * The result of a JSON-RPC response body. `problem` is null for a result, otherwise a short reason (not
 * JSON or SSE, a JSON-RPC error, no result).
 * @param {string} body
 * @returns {{ problem: string | null, result: any }}
 */
export function readRpcResult(body) {
  /** @type {RpcMessage} */
  let message;
  try {
    message = parseRpc(body);
  } catch (error) {
    return {
      problem: `unparseable: ${error instanceof Error ? error.message : String(error)}`,
      result: null,
    };
  }
  if (message.error)
    return { problem: `json-rpc error ${message.error.code}: ${message.error.message}`, result: null };
  if (!message.result) return { problem: 'no result in the JSON-RPC message', result: null };
  return { problem: null, result: message.result };
}

/**
 * What a tools/call answered. `problem` is null for a JSON-RPC result whose tool result is not an error,
 * otherwise a short reason; `text` joins the text blocks; `structured` is `structuredContent`.
 * @param {string} body
 * @returns {{ problem: string | null, rpcError: boolean, toolError: boolean, text: string, structured: any }}
 */
export function readToolResult(body) {
  const { problem, result } = readRpcResult(body);
  if (problem !== null) return { problem, rpcError: true, toolError: false, text: '', structured: null };
  /** @type {ToolResult} */
  const tool = result;
  const text = (tool.content ?? [])
    .filter((block) => block.type === 'text')
    .map((block) => block.text ?? '')
    .join('\n');
  const toolError = tool.isError === true;
  return {
    problem: toolError ? `tool error: ${text.slice(0, 200)}` : null,
    rpcError: false,
    toolError,
    text,
    structured: tool.structuredContent ?? null,
  };
}
