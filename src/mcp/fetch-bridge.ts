import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AuthInfo, McpHttpHandler } from '@modelcontextprotocol/server';

// Hop-by-hop and body framing headers: the web request carries no body (it is handed over already parsed).
const DROPPED = new Set([
  'content-length',
  'transfer-encoding',
  'content-encoding',
  'connection',
  'keep-alive',
]);

/**
 * Serves a Node request through the SDK's web-standard handler. Lighter than the SDK's own Node adapter
 * because the body is handed over already parsed (no second serialization) and a JSON answer is written in
 * one piece; an SSE answer is streamed as it comes. The client going away aborts the request.
 */
export async function serveThroughFetch(
  handler: McpHttpHandler,
  req: IncomingMessage,
  res: ServerResponse,
  parsedBody: unknown,
  authInfo: AuthInfo,
): Promise<void> {
  const abort = new AbortController();
  let finished = false;
  res.once('close', () => {
    if (!finished) abort.abort();
  });
  const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
    method: req.method ?? 'GET',
    headers: webHeaders(req.headers),
    signal: abort.signal,
  });
  const response = await handler.fetch(request, {
    authInfo,
    ...(parsedBody !== undefined && { parsedBody }),
  });
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  if (response.body === null || !headers['content-type']?.includes('text/event-stream')) {
    const body = Buffer.from(await response.arrayBuffer());
    finished = true;
    if (response.body !== null) headers['content-length'] = String(body.length);
    res.writeHead(response.status, headers).end(body.length > 0 ? body : undefined);
    return;
  }
  res.writeHead(response.status, headers);
  try {
    for await (const chunk of response.body) {
      if (abort.signal.aborted) break;
      if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(abort.signal, 'abort')]);
    }
  } finally {
    finished = true;
    res.end();
  }
}

function webHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROPPED.has(name) || name.startsWith(':')) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
