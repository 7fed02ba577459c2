import {
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  validateHostHeader,
  validateOriginHeader,
} from '@modelcontextprotocol/server';
import type { BastionConfig } from '../config/config.schema.js';

export interface OriginVerdict {
  ok: boolean;
  reason?: string;
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost|\[::1\])$/i;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

/**
 * DNS-rebinding protection (Streamable HTTP transport, "Security Warning"), for every route: a browser page
 * on a foreign origin must not reach the server, and on a loopback bind the Host header must name this
 * machine. Requests without an Origin header (every non-browser client) pass the origin check.
 */
export class OriginPolicy {
  private readonly origins: string[];
  private readonly hosts: string[] | null;

  constructor(server: BastionConfig['server']) {
    const configured = server.allowedOrigins.map(hostnameOf).filter((h): h is string => h !== null);
    this.origins = [...localhostAllowedOrigins(), ...configured];
    const loopback = isLoopback(server.host);
    this.hosts =
      loopback || server.allowedHosts.length > 0
        ? [
            ...(loopback ? localhostAllowedHostnames() : []),
            ...server.allowedHosts,
            ...(loopback ? [] : [server.host]),
          ]
        : null;
  }

  /** Checks Origin, and Host unless `options.host` is false. */
  check(
    headers: { host?: string | string[]; origin?: string | string[] },
    options: { host: boolean } = { host: true },
  ): OriginVerdict {
    if (this.hosts && options.host) {
      const host = validateHostHeader(single(headers.host), this.hosts);
      if (!host.ok) return { ok: false, reason: 'Host header not allowed' };
    }
    const origin = single(headers.origin);
    if (origin !== undefined) {
      const verdict = validateOriginHeader(origin, this.origins);
      if (!verdict.ok) return { ok: false, reason: 'Origin not allowed' };
    }
    return { ok: true };
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function hostnameOf(origin: string): string | null {
  try {
    return new URL(origin).hostname;
  } catch {
    return origin || null;
  }
}
