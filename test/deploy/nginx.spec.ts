import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { configSchema } from '../../src/config/config.schema.js';

// deploy/nginx/nginx.conf read as nginx reads it: directives and blocks, with nginx's inheritance of
// proxy_set_header and add_header (a level that sets one replaces the whole list it would inherit).
// scripts/check-nginx.sh runs `nginx -t` on it and sends real MCP traffic through it.

interface Directive {
  name: string;
  args: string[];
  block?: Directive[];
}

const ROOT = path.resolve('.');
const conf = parseNginx(readFileSync(path.join(ROOT, 'deploy/nginx/nginx.conf'), 'utf8'));
const http = block(conf, 'http');
const servers = http.filter((d) => d.name === 'server');
const tlsServer = servers.find((s) => listens(s).some((l) => l.includes('ssl'))) as Directive;
const plainServer = servers.find((s) => listens(s).every((l) => !l.includes('ssl'))) as Directive;
const defaults = configSchema.parse({});

function parseNginx(source: string): Directive[] {
  const tokens: string[] = [];
  const pattern = /#[^\n]*|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([{};])|([^\s{};"'#]+)/g;
  for (const match of source.matchAll(pattern)) {
    if (match[0].startsWith('#')) continue;
    tokens.push(match[1] ?? match[2] ?? match[3] ?? (match[4] as string));
  }
  let index = 0;
  const parseBlock = (): Directive[] => {
    const out: Directive[] = [];
    let words: string[] = [];
    while (index < tokens.length) {
      const token = tokens[index++] as string;
      if (token === ';') {
        out.push({ name: words[0] as string, args: words.slice(1) });
        words = [];
      } else if (token === '{') {
        out.push({ name: words[0] as string, args: words.slice(1), block: parseBlock() });
        words = [];
      } else if (token === '}') {
        return out;
      } else {
        words.push(token);
      }
    }
    expect(words).toEqual([]);
    return out;
  };
  return parseBlock();
}

function block(within: Directive[], name: string, ...args: string[]): Directive[] {
  const found = within.find((d) => d.name === name && args.every((a, i) => d.args[i] === a));
  expect(found?.block).toBeDefined();
  return (found as Directive).block as Directive[];
}

function values(within: Directive[], name: string): string[][] {
  return within.filter((d) => d.name === name).map((d) => d.args);
}

function value(within: Directive[], name: string): string | undefined {
  return values(within, name)[0]?.join(' ');
}

function listens(server: Directive): string[] {
  return values(server.block as Directive[], 'listen').map((a) => a.join(' '));
}

/** nginx time: 3600, 3600s, 60m, 1h. */
function seconds(time: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(time) as RegExpExecArray;
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? 's') as 's'];
  return Number(match[1]) * unit;
}

/** nginx size: 4m, 512k, 1g, 1024. */
function bytes(size: string): number {
  const match = /^(\d+)([kmg])?$/i.exec(size) as RegExpExecArray;
  return Number(match[1]) * (match[2] ? 1024 ** ('kmg'.indexOf((match[2] as string).toLowerCase()) + 1) : 1);
}

/** A directive as a location sees it: its own, else the server's, else http's (nginx's inheritance). */
function effective(location: Directive[], server: Directive[], name: string): string[][] {
  for (const level of [location, server, http]) {
    const own = values(level, name);
    if (own.length > 0) return own;
  }
  return [];
}

/** Every location of a server that proxies to Bastion. */
function proxiedLocations(server: Directive): Directive[][] {
  return (server.block as Directive[])
    .filter((d) => d.name === 'location' && d.block?.some((x) => x.name === 'proxy_pass'))
    .map((d) => d.block as Directive[]);
}

describe('nginx.conf upstream', () => {
  it('balances over both Bastion instances on port 3000 with keep-alive connections', () => {
    const upstream = block(http, 'upstream', 'bastion');
    expect(values(upstream, 'server').map((a) => a[0])).toEqual(['bastion-1:3000', 'bastion-2:3000']);
    // Round robin is nginx's default: no other method is named.
    for (const method of ['least_conn', 'ip_hash', 'hash', 'random'])
      expect(value(upstream, method)).toBeUndefined();
    expect(Number(value(upstream, 'keepalive'))).toBeGreaterThan(0);
  });

  it('closes idle upstream connections before Bastion does, so a request never lands on one it closed', () => {
    const main = readFileSync(path.join(ROOT, 'src/main.ts'), 'utf8');
    const bastionMs = Number((/keepAliveTimeout:\s*([\d_]+)/.exec(main)?.[1] ?? '').replace(/_/g, ''));
    expect(bastionMs).toBeGreaterThan(0);
    const upstream = block(http, 'upstream', 'bastion');
    expect(seconds(value(upstream, 'keepalive_timeout') ?? '60s') * 1000).toBeLessThan(bastionMs);
  });

  it('proxies every location to the upstream over HTTP/1.1 with no Connection: close', () => {
    for (const server of [tlsServer, plainServer]) {
      const locations = proxiedLocations(server);
      expect(locations.length).toBeGreaterThan(0);
      for (const location of locations) {
        expect(value(location, 'proxy_pass')).toBe('http://bastion');
        expect(effective(location, server.block as Directive[], 'proxy_http_version')).toEqual([['1.1']]);
        const headers = effective(location, server.block as Directive[], 'proxy_set_header');
        expect(headers).toContainEqual(['Connection', '']);
      }
    }
  });
});

describe('nginx.conf streaming (Streamable HTTP, SSE)', () => {
  const server = tlsServer.block as Directive[];

  it.each(['proxy_buffering', 'proxy_cache', 'proxy_request_buffering'])('turns %s off', (name) => {
    for (const location of proxiedLocations(tlsServer)) {
      expect(effective(location, server, name)).toEqual([['off']]);
    }
  });

  it('keeps chunked transfer encoding on and compression off', () => {
    expect(value(server, 'chunked_transfer_encoding') ?? 'on').toBe('on');
    expect(value(http, 'gzip') ?? 'off').toBe('off');
    expect(value(server, 'gzip') ?? 'off').toBe('off');
  });

  it.each(['proxy_read_timeout', 'proxy_send_timeout'])('waits at least an hour (%s)', (name) => {
    for (const location of proxiedLocations(tlsServer)) {
      const [time] = effective(location, server, name)[0] ?? ['60s'];
      expect(seconds(time as string)).toBeGreaterThanOrEqual(3600);
    }
  });

  it('accepts the request bodies Bastion accepts, and no larger (server.bodyLimitBytes)', () => {
    expect(bytes(value(http, 'client_max_body_size') as string)).toBe(defaults.server.bodyLimitBytes);
  });
});

describe('nginx.conf headers to Bastion', () => {
  const server = tlsServer.block as Directive[];

  it.each([
    ['Authorization', '$http_authorization'],
    ['Mcp-Session-Id', '$http_mcp_session_id'],
    ['Mcp-Protocol-Version', '$http_mcp_protocol_version'],
    ['Mcp-Method', '$http_mcp_method'],
    ['Mcp-Name', '$http_mcp_name'],
    ['Last-Event-ID', '$http_last_event_id'],
    ['Origin', '$http_origin'],
    ['Host', '$host'],
    ['X-Forwarded-Proto', '$scheme'],
    ['X-Forwarded-Host', '$host'],
  ])('passes %s in every proxied location', (header, variable) => {
    for (const location of proxiedLocations(tlsServer)) {
      expect(effective(location, server, 'proxy_set_header')).toContainEqual([header, variable]);
    }
  });

  it('overwrites X-Forwarded-For with the client address: Bastion trusts it for per-IP limits', () => {
    for (const location of proxiedLocations(tlsServer)) {
      const forwarded = effective(location, server, 'proxy_set_header').filter(
        ([name]) => name?.toLowerCase() === 'x-forwarded-for',
      );
      expect(forwarded).toEqual([['X-Forwarded-For', '$remote_addr']]);
    }
  });
});

describe('nginx.conf TLS and HTTP', () => {
  const server = tlsServer.block as Directive[];

  it('serves HTTPS on 443 with the certificate and key from /etc/nginx/tls/', () => {
    expect(listens(tlsServer).some((l) => /^443 ssl\b/.test(l))).toBe(true);
    expect(value(server, 'ssl_certificate')).toMatch(/^\/etc\/nginx\/tls\/[\w.-]+\.pem$/);
    expect(value(server, 'ssl_certificate_key')).toMatch(/^\/etc\/nginx\/tls\/[\w.-]+\.pem$/);
    const protocols = value(server, 'ssl_protocols')?.split(' ') ?? [];
    expect(protocols.sort()).toEqual(['TLSv1.2', 'TLSv1.3']);
  });

  it('sends HSTS and nosniff on every HTTPS answer, nginx error pages included', () => {
    const levels = [
      server,
      ...(tlsServer.block as Directive[])
        .filter((d) => d.name === 'location')
        .map((d) => d.block as Directive[]),
    ];
    for (const level of levels) {
      const own = values(level, 'add_header');
      const headers = own.length > 0 ? own : values(server, 'add_header');
      expect(headers.map((h) => h[0])).toEqual(
        expect.arrayContaining(['Strict-Transport-Security', 'X-Content-Type-Options']),
      );
      expect(headers.find((h) => h[0] === 'Strict-Transport-Security')).toContain('always');
    }
    expect(value(http, 'server_tokens')).toBe('off');
  });

  it('answers health probes on port 80 and redirects everything else to HTTPS, keeping the method', () => {
    expect(listens(plainServer).some((l) => /^80\b/.test(l))).toBe(true);
    const plain = plainServer.block as Directive[];
    const health = block(plain, 'location', '/health/');
    expect(value(health, 'proxy_pass')).toBe('http://bastion');
    const rest = block(plain, 'location', '/');
    expect(values(rest, 'return')).toEqual([['308', 'https://$host$request_uri']]);
  });

  it('logs the path without its query string, and never a header', () => {
    const format =
      values(http, 'log_format')
        .find((a) => a[0] === 'bastion')
        ?.slice(1)
        .join('') ?? '';
    expect(format).toContain('$uri');
    expect(format).not.toMatch(/\$request_uri|\$request\b|\$args|\$query_string|\$http_/);
    expect(value(http, 'access_log')).toMatch(/ bastion$/);
  });
});
