import type { ServerResponse } from 'node:http';
import type { JSONRPCMessage, RequestId, Transport } from '@modelcontextprotocol/server';
import { ExchangeWriter } from './exchange-writer.js';

/**
 * Carries one JSON-RPC request and its answer over one Node HTTP response, for the SDK's protocol server
 * (the exchanges Bastion hands to the SDK). The response closing early closes the transport, which cancels
 * the request. Once answered there is nothing left to tear down, so the answered exchange is simply dropped
 * (closing it would only build an unused "connection closed" error).
 */
export class ExchangeTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: Transport['onmessage'];

  private readonly writer: ExchangeWriter;
  private closed = false;

  constructor(
    res: ServerResponse,
    private readonly requestId: RequestId,
  ) {
    this.writer = new ExchangeWriter(res);
    res.once('close', () => void this.close());
  }

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage): Promise<void> {
    if (!isAnswerTo(message, this.requestId)) return this.writer.related(message);
    this.closed = true;
    this.writer.answer(message);
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
