import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { Authenticator } from '../../src/auth/authenticator.js';
import type { HttpServer } from '../../src/main.js';
import { postMcp, startTestServer } from '../support/http-server.js';
import { createWorkspaceFixture, type WorkspaceFixture } from '../support/workspace-fixture.js';

let ws: WorkspaceFixture;
let server: HttpServer;
let jwksServer: Server;
let issuer: string;
let signingKey: CryptoKey;
let strangerKey: CryptoKey;
let jwksRequests = 0;
const reasons: string[] = [];

beforeAll(async () => {
  ws = await createWorkspaceFixture();
  const known = await generateKeyPair('RS256', { extractable: true });
  const stranger = await generateKeyPair('RS256', { extractable: true });
  signingKey = known.privateKey;
  strangerKey = stranger.privateKey;
  const jwk = { ...(await exportJWK(known.publicKey)), kid: 'known', alg: 'RS256', use: 'sig' };
  jwksServer = createServer((req, res) => {
    jwksRequests++;
    if (req.url !== '/jwks.json') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
  server = await startTestServer(ws.root, {
    auth: { mode: 'oauth', oauth: { issuer, jwksUrl: `${issuer}/jwks.json` } },
  });
  server.app.get(Authenticator).onFailure(({ reason }) => reasons.push(reason));
});

afterAll(async () => {
  await server?.close();
  await new Promise((resolve) => jwksServer?.close(resolve));
  ws?.cleanup();
});

interface TokenSpec {
  claims?: JWTPayload;
  key?: CryptoKey;
  kid?: string;
  expiresIn?: string | number;
}

function token({
  claims = {},
  key = signingKey,
  kid = 'known',
  expiresIn = '5m',
}: TokenSpec = {}): Promise<string> {
  // Claims given by a test win over the defaults, so a wrong issuer or audience reaches the server as given.
  return new SignJWT({ scope: 'files:read', iss: issuer, aud: server.url, sub: 'alice', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(key);
}

function post(body: unknown, authorization?: string): Promise<Response> {
  return postMcp(server.url, body, authorization);
}

const toolsList = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };
const metadataUrl = (): string => new URL('/.well-known/oauth-protected-resource/mcp', server.url).href;

function unsigned(claims: JWTPayload): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ iss: issuer, aud: server.url, sub: 'mallory', exp: now + 300, ...claims })}.`;
}

describe('OAuth resource server', () => {
  it('answers a request without a token with 401 pointing at the protected-resource metadata', async () => {
    const response = await post(toolsList);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${metadataUrl()}"`);
  });

  it('serves RFC 9728 metadata at the root and the /mcp-suffixed path, without credentials', async () => {
    for (const url of [metadataUrl(), new URL('/.well-known/oauth-protected-resource', server.url).href]) {
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({
        resource: server.url,
        authorization_servers: [issuer],
        bearer_methods_supported: ['header'],
      });
    }
  });

  it('accepts a valid token through the official SDK client and lists the tools its scopes allow', async () => {
    const client = new Client({ name: 'oauth-test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(server.url), {
        requestInit: { headers: { authorization: `Bearer ${await token()}` } },
      }),
    );
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('read_text_file');
      expect(names).not.toContain('write_file');
    } finally {
      await client.close();
    }
  });

  it.each<[string, string, () => Promise<string> | string]>([
    ['an expired token', 'expired', () => token({ expiresIn: Math.floor(Date.now() / 1000) - 3600 })],
    [
      'a token for another audience',
      'wrong_audience',
      () => token({ claims: { aud: 'https://other.example/mcp' } }),
    ],
    ['a token from another issuer', 'wrong_issuer', () => token({ claims: { iss: 'https://evil.example' } })],
    [
      'an unsigned token (alg: none)',
      'algorithm_not_allowed',
      () => unsigned({ scope: 'files:read files:write admin' }),
    ],
    [
      'a token signed by a key the issuer does not publish',
      'unknown_signing_key',
      () => token({ key: strangerKey, kid: 'stranger' }),
    ],
    [
      'a token signed by another key under a known key id',
      'bad_signature',
      () => token({ key: strangerKey }),
    ],
    [
      'a token with a tampered payload',
      'bad_signature',
      async () => {
        const [header, , signature] = (await token()).split('.');
        const forged = Buffer.from(
          JSON.stringify({ iss: issuer, aud: server.url, sub: 'alice', exp: 9999999999, scope: 'admin' }),
        ).toString('base64url');
        return `${header}.${forged}.${signature}`;
      },
    ],
  ])('refuses %s with 401 invalid_token (%s)', async (_name, reason, make) => {
    const before = reasons.length;
    const response = await post(toolsList, `Bearer ${await make()}`);
    expect(response.status).toBe(401);
    // This request's own reason, not one an earlier test left behind.
    expect(reasons.slice(before)).toEqual([reason]);
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer error="invalid_token", error_description="The credentials were not accepted.", resource_metadata="${metadataUrl()}"`,
    );
  });

  it('answers a tool call outside the token scopes with 403 insufficient_scope naming the scope', async () => {
    const call = {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'write_file', arguments: { path: 'x.txt', content: 'x' } },
    };
    const response = await post(call, `Bearer ${await token()}`);
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope", ');
    expect(response.headers.get('www-authenticate')).toContain('scope="files:write"');
    expect(response.headers.get('www-authenticate')).toContain(`resource_metadata="${metadataUrl()}"`);
    const allowed = await post(
      call,
      `Bearer ${await token({ claims: { scope: 'files:read files:write' } })}`,
    );
    expect(allowed.status).toBe(200);
  });

  it('answers a token whose scopes are named like Object.prototype members with 403, not 500', async () => {
    const read = {
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'read_text_file', arguments: { path: 'README.md' } },
    };
    for (const scope of ['constructor', '__proto__', 'toString', 'constructor hasOwnProperty valueOf']) {
      const response = await post(read, `Bearer ${await token({ claims: { scope } })}`);
      expect(response.status).toBe(403);
      expect(response.headers.get('www-authenticate')).toContain('scope="files:read"');
    }
  });

  it('challenges a resource read or prompt outside the token scopes, as it does a tool call', async () => {
    const bearer = `Bearer ${await token({ claims: { scope: 'agent' } })}`;
    for (const [method, params] of [
      ['resources/read', { uri: 'workspace:///README.md' }],
      ['prompts/get', { name: 'review_file', arguments: { path: 'README.md' } }],
    ] as const) {
      const response = await post({ jsonrpc: '2.0', id: 4, method, params }, bearer);
      expect(response.status).toBe(403);
      expect(response.headers.get('www-authenticate')).toContain('scope="files:read"');
    }
    // A list is filtered rather than refused: an agent-only token sees no resources.
    const list = await post({ jsonrpc: '2.0', id: 5, method: 'resources/list', params: {} }, bearer);
    expect(list.status).toBe(200);
    expect(((await list.json()) as { result: { resources: unknown[] } }).result.resources).toEqual([]);
  });

  it('fetches the JWKS from the issuer, not once per request', async () => {
    // A server of its own, so its key cache starts empty whatever other tests did.
    const fresh = await startTestServer(ws.root, {
      auth: { mode: 'oauth', oauth: { issuer, jwksUrl: `${issuer}/jwks.json` } },
    });
    try {
      const before = jwksRequests;
      for (let id = 1; id <= 5; id++) {
        const bearer = `Bearer ${await token({ claims: { aud: fresh.url } })}`;
        expect((await postMcp(fresh.url, { ...toolsList, id }, bearer)).status).toBe(200);
      }
      expect(jwksRequests - before).toBe(1);
    } finally {
      await fresh.close();
    }
  });
});
