import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import {
  ProtocolError,
  ProtocolErrorCode,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
} from '@modelcontextprotocol/client';
import { failureDetail, failureKind, isRetryable, isUpstreamFailure } from './upstream-errors.js';

/** What fetch throws for a port nothing listens on (undici's TypeError, caused by ECONNREFUSED). */
async function refusedFetch(): Promise<Error> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return fetch(`http://127.0.0.1:${port}/mcp`).then(
    () => {
      throw new Error('the port answered');
    },
    (error: Error) => error,
  );
}

/** A TypeError as Bastion's own code would throw it (a property of undefined). */
function ownBug(): Error {
  try {
    const missing = undefined as unknown as { tools: string[] };
    return new Error(String(missing.tools.length));
  } catch (error) {
    return error as Error;
  }
}

const UPSTREAM_TEXT = 'db down: password=hunter2 \u001b[31mat /srv/app/db.js\u001b[0m\u202e';

describe('isUpstreamFailure', () => {
  it("counts fetch's network failure (a refused connection) against the upstream", async () => {
    const refused = await refusedFetch();
    expect(refused.name).toBe('TypeError');
    expect(isUpstreamFailure(refused)).toBe(true);
    expect(isRetryable(refused)).toBe(true);
  });

  it("does not count a TypeError of Bastion's own against the upstream, so a bug cannot open its circuit", () => {
    const bug = ownBug();
    expect(bug.name).toBe('TypeError');
    expect(isUpstreamFailure(bug)).toBe(false);
    expect(isRetryable(bug)).toBe(false);
  });

  it("does not count a TypeError that only borrows fetch's message, or one caused by no system error", () => {
    expect(isUpstreamFailure(new TypeError('fetch failed'))).toBe(false);
    expect(isUpstreamFailure(new TypeError('fetch failed', { cause: new Error('bad port') }))).toBe(false);
    expect(isUpstreamFailure(new TypeError('x is not a function', { cause: { code: 'ECONNREFUSED' } }))).toBe(
      false,
    );
  });

  it("counts undici's own network errors, found down the cause chain", () => {
    const socket = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    expect(isUpstreamFailure(new TypeError('fetch failed', { cause: socket }))).toBe(true);
  });

  it('counts timeouts, lost connections, internal errors and failing HTTP statuses; not refusals', () => {
    expect(isUpstreamFailure(new SdkError(SdkErrorCode.RequestTimeout, 'timeout'))).toBe(true);
    expect(isUpstreamFailure(new SdkError(SdkErrorCode.ConnectionClosed, 'closed'))).toBe(true);
    expect(isUpstreamFailure(new ProtocolError(ProtocolErrorCode.InternalError, 'boom'))).toBe(true);
    expect(isUpstreamFailure(new ProtocolError(ProtocolErrorCode.InvalidParams, 'bad'))).toBe(false);
    const http = (status: number) =>
      new SdkHttpError(SdkErrorCode.ClientHttpNotImplemented, `HTTP ${status}`, { status, statusText: '' });
    expect(isUpstreamFailure(http(503))).toBe(true);
    expect(isUpstreamFailure(http(401))).toBe(true);
    expect(isUpstreamFailure(http(400))).toBe(false);
  });
});

describe('failureKind and failureDetail', () => {
  it("keep the upstream's error text out of the kind, and put it, printable and redacted, in the detail", () => {
    const error = new ProtocolError(ProtocolErrorCode.InternalError, UPSTREAM_TEXT);
    expect(failureKind(error)).toBe('answered with an error (-32603)');
    expect(failureDetail(error)).toBe(
      'answered with an error (-32603): db down: password=[redacted] at /srv/app/db.js',
    );
  });

  it("keep an HTTP body and an unknown error's message out of the kind", () => {
    const http = new SdkHttpError(SdkErrorCode.ClientHttpNotImplemented, `Error POSTing: ${UPSTREAM_TEXT}`, {
      status: 500,
      statusText: 'x',
    });
    expect(failureKind(http)).toBe('answered HTTP 500');
    expect(failureDetail(http)).toMatch(/^answered HTTP 500: Error POSTing: db down: password=\[redacted\]/);
    const unknown = new Error(`Server's protocol version is not supported: ${UPSTREAM_TEXT}`);
    expect(failureKind(unknown)).toBe('failed');
    expect(failureDetail(unknown)).not.toContain('hunter2');
  });

  it('name a refused connection and a command that cannot start by their system code', async () => {
    expect(failureKind(await refusedFetch())).toBe('could not be reached (ECONNREFUSED)');
    const child = spawn('/no/such/command-for-bastion');
    const failed = await new Promise<Error>((resolve) => child.once('error', resolve));
    expect(failureKind(failed)).toBe('could not be started (ENOENT)');
    expect(failureDetail(failed)).toBe('could not be started (ENOENT)');
  });

  it("never put a code that is not a system code's shape into words", () => {
    const forged = Object.assign(new Error('x'), { code: 'ECONN \u001b[31mhi', syscall: 'connect' });
    expect(failureKind(forged)).toBe('failed');
  });

  it('cut a long message short', () => {
    const long = new ProtocolError(ProtocolErrorCode.InternalError, 'y'.repeat(5_000));
    expect(failureDetail(long)).toHaveLength('answered with an error (-32603): '.length + 300 + 1);
    expect(failureDetail(long, 1_000)).toHaveLength('answered with an error (-32603): '.length + 1_000 + 1);
  });
});
