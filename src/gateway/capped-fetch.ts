import type { FetchLike } from '@modelcontextprotocol/client';

/** The upstream sent more than Bastion reads from one response. */
export class ResponseTooLarge extends Error {
  constructor(
    readonly limit: number,
    options?: ErrorOptions,
  ) {
    super(`The upstream's response is over the ${limit}-byte limit.`, options);
    this.name = 'ResponseTooLarge';
  }
}

/**
 * fetch for an HTTP upstream whose POST response bodies (a JSON reply, or the SSE stream of one request) are
 * cut off past `maxBytes`: an upstream cannot make Bastion buffer an unbounded answer. The long-lived GET
 * stream of server notifications is left alone (it carries many small messages over hours).
 *
 * A body cut off mid-stream (an SSE reply) ends no request by itself: the SDK only reports the broken stream.
 * `onCutOff` is told the request's body then, so the caller can answer the requests it carried.
 */
export function cappedFetch(maxBytes: number, onCutOff?: (requestBody: unknown) => void): FetchLike {
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
          if (seen <= maxBytes) return controller.enqueue(chunk);
          controller.error(new ResponseTooLarge(maxBytes));
          onCutOff?.(init.body);
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
