import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A request id a client may choose: short and plain, so it is safe in logs, headers and audit records. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The id of a request: the client's `x-request-id` when it is a plain token, otherwise a new UUID. The
 * header is rewritten to the id taken, so every layer reading it (logs, the MCP handler) sees one id.
 */
export function requestIdOf(req: IncomingMessage): string {
  const offered = req.headers['x-request-id'];
  const id = typeof offered === 'string' && CLIENT_REQUEST_ID.test(offered) ? offered : randomUUID();
  req.headers['x-request-id'] = id;
  return id;
}
