import type { FetchLike } from '@modelcontextprotocol/client';

/** The upstream sent more than Bastion reads from one response. */
export class ResponseTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`The upstream's response is over the ${limit}-byte limit.`);
    this.name = 'ResponseTooLarge';
  }
}

/**
 * fetch for an HTTP upstream whose POST response bodies (a JSON reply, or the SSE stream of one request) are
 * cut off past `maxBytes`: an upstream cannot make Bastion buffer an unbounded answer. The long-lived GET
 * stream of server notifications is left alone (it carries many small messages over hours).
 */
export function cappedFetch(maxBytes: number): FetchLike {
  return async (url, init) => {
    const response = await fetch(url, init);
    if (init?.method !== 'POST' || !response.body) return response;
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (declared > maxBytes) {
      await response.body.cancel().catch(() => undefined);
      throw new ResponseTooLarge(maxBytes);
    }
    let seen = 0;
    const counted = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > maxBytes) controller.error(new ResponseTooLarge(maxBytes));
          else controller.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}
