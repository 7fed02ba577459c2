import type { ServerResponse } from 'node:http';

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/**
 * Writes one JSON-RPC exchange on a Node HTTP response. The answer alone goes back as a single JSON body;
 * when messages related to the request come first (progress, log messages) the response becomes an SSE
 * stream that ends with the answer, as Streamable HTTP allows. After the answer, nothing more is written.
 */
export class ExchangeWriter {
  private streaming = false;
  private done = false;

  constructor(private readonly res: ServerResponse) {}

  /** True once the answer is written. */
  get answered(): boolean {
    return this.done;
  }

  /** True once the answer is written, or the client has gone: nothing more can be written. */
  get finished(): boolean {
    return this.done || this.res.destroyed;
  }

  /** A message related to the request, before its answer. */
  related(message: unknown): void {
    if (this.finished) return;
    if (!this.streaming) {
      this.streaming = true;
      this.res.writeHead(200, SSE_HEADERS);
    }
    this.res.write(sseEvent(JSON.stringify(message)));
  }

  answer(message: unknown): void {
    if (this.finished) return;
    this.done = true;
    const text = JSON.stringify(message);
    if (this.streaming) {
      this.res.end(sseEvent(text));
      return;
    }
    const body = Buffer.from(text);
    this.res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    this.res.end(body);
  }
}

function sseEvent(data: string): string {
  return `event: message\ndata: ${data}\n\n`;
}
