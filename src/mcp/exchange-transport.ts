import type { ServerResponse } from 'node:http';
import type { JSONRPCMessage, RequestId, Transport } from '@modelcontextprotocol/server';

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/**
 * Carries one JSON-RPC request and its answer over one Node HTTP response. The answer alone goes back as a
 * single JSON body; when the server sends related messages first (progress, log messages) the response
 * becomes an SSE stream that ends with the answer, as Streamable HTTP allows. The response closing early
 * closes the transport, which cancels the request. Once answered there is nothing left to tear down, so the
 * answered exchange is simply dropped (closing it would only build an unused "connection closed" error).
 */
export class ExchangeTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: Transport['onmessage'];

  private streaming = false;
  private answered = false;
  private closed = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: RequestId,
  ) {
    res.once('close', () => {
      if (!this.answered) void this.close();
    });
  }

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.answered || this.res.destroyed) return;
    const text = JSON.stringify(message);
    if (isAnswerTo(message, this.requestId)) {
      this.answered = true;
      this.closed = true;
      if (this.streaming) {
        this.res.end(sseEvent(text));
      } else {
        const body = Buffer.from(text);
        this.res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
        this.res.end(body);
      }
      return;
    }
    if (!this.streaming) {
      this.streaming = true;
      this.res.writeHead(200, SSE_HEADERS);
    }
    this.res.write(sseEvent(text));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.();
  }
}

function isAnswerTo(message: JSONRPCMessage, id: RequestId): boolean {
  return ('result' in message || 'error' in message) && message.id === id;
}

function sseEvent(data: string): string {
  return `event: message\ndata: ${data}\n\n`;
}
