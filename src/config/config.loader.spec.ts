import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ConfigError } from './config.errors.js';
import { loadConfig } from './config.loader.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'bastion-config-'));

describe('loadConfig', () => {
  it('serves loopback on port 3000 over ./workspace by default', () => {
    const config = loadConfig({ env: {}, cwd: tmp() });
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 3000 });
    expect(config.workspace).toMatchObject({ root: './workspace', readOnly: false });
    expect(config.workspace.denyPatterns).toContain('**/.env*');
  });

  it('layers defaults < file < environment < overrides', () => {
    const dir = tmp();
    const file = path.join(dir, 'bastion.yaml');
    writeFileSync(file, 'server:\n  port: 4000\n  host: 127.0.0.2\nworkspace:\n  readOnly: true\n');
    const config = loadConfig({
      env: { BASTION_PORT: '5000' },
      file,
      cwd: dir,
      overrides: { 'workspace.root': '/srv/ws' },
    });
    expect(config.server.port).toBe(5000);
    expect(config.server.host).toBe('127.0.0.2');
    expect(config.workspace.readOnly).toBe(true);
    expect(config.workspace.root).toBe('/srv/ws');
  });

  it('reads config/bastion.json from the working directory when no file is named', () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'config'));
    writeFileSync(path.join(dir, 'config', 'bastion.json'), JSON.stringify({ log: { level: 'warn' } }));
    expect(loadConfig({ env: {}, cwd: dir }).log.level).toBe('warn');
  });

  it('parses lists and booleans from the environment', () => {
    const config = loadConfig({
      env: { BASTION_ALLOWED_ORIGINS: 'https://a.example, https://b.example', BASTION_READ_ONLY: 'yes' },
      cwd: tmp(),
    });
    expect(config.server.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(config.workspace.readOnly).toBe(true);
  });

  it('refuses hard-linked files unless BASTION_ALLOW_HARD_LINKS admits them', () => {
    expect(loadConfig({ env: {}, cwd: tmp() }).workspace.allowHardLinks).toBe(false);
    const config = loadConfig({ env: { BASTION_ALLOW_HARD_LINKS: 'true' }, cwd: tmp() });
    expect(config.workspace.allowHardLinks).toBe(true);
  });

  it('trusts no proxy, every proxy, a number of hops, or named addresses and ranges', () => {
    const trust = (value: string) =>
      loadConfig({ env: { BASTION_TRUST_PROXY: value }, cwd: tmp() }).server.trustProxy;
    expect(loadConfig({ env: {}, cwd: tmp() }).server.trustProxy).toBe(false);
    expect(trust('true')).toBe(true);
    expect(trust('0')).toBe(false);
    expect(trust('1')).toBe(1);
    expect(trust('127.0.0.1, 10.0.0.0/8, fd00::/8, loopback')).toEqual([
      '127.0.0.1',
      '10.0.0.0/8',
      'fd00::/8',
      'loopback',
    ]);
    for (const bad of ['nginx', '10.0.0.0/33', '10.0.0.1/8/1', '-1'])
      expect(() => trust(bad)).toThrow(/server\.trustProxy/);
  });

  it('names Kubernetes service-link variables as such, rather than as a bad port', () => {
    expect(() =>
      loadConfig({
        env: {
          BASTION_PORT: 'tcp://10.96.0.12:3000',
          BASTION_SERVICE_HOST: '10.96.0.12',
          BASTION_PORT_3000_TCP_ADDR: '10.96.0.12',
        },
        cwd: tmp(),
      }),
    ).toThrow(
      /BASTION_PORT: set by Kubernetes[^]*BASTION_SERVICE_HOST: set by Kubernetes[^]*BASTION_PORT_3000_TCP_ADDR: set by Kubernetes[^]*enableServiceLinks: false/,
    );
  });

  it('names every bad key in one error and never echoes a value', () => {
    const secretish = 'hunter2-not-a-port';
    let error: unknown;
    try {
      loadConfig({
        env: {
          BASTION_PORT: secretish,
          BASTION_READ_ONLY: 'maybe',
          BASTION_PORTT: '1',
          BASTION_LOG_LEVEL: 'loud',
        },
        cwd: tmp(),
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('server.port');
    expect(message).toContain('workspace.readOnly');
    expect(message).toContain('BASTION_PORTT: unknown variable');
    expect(message).toContain('log.level');
    expect(message).not.toContain(secretish);
    expect(message).not.toContain('maybe');
  });

  it('requires an issuer and a JWKS URL in OAuth mode, and maps scope lists from the environment', () => {
    expect(() => loadConfig({ env: { BASTION_AUTH: 'oauth' }, cwd: tmp() })).toThrow(
      /auth\.oauth\.issuer: required when auth\.mode is oauth.*auth\.oauth\.jwksUrl/s,
    );
    const config = loadConfig({
      env: {
        BASTION_AUTH: 'oauth',
        BASTION_OAUTH_ISSUER: 'https://id.example',
        BASTION_OAUTH_JWKS_URL: 'https://id.example/jwks',
        BASTION_OAUTH_ALGORITHMS: 'ES256,EdDSA',
      },
      cwd: tmp(),
    });
    expect(config.auth.oauth).toMatchObject({ issuer: 'https://id.example', algorithms: ['ES256', 'EdDSA'] });
    expect(() => loadConfig({ env: { BASTION_AUTH: 'basic' }, cwd: tmp() })).toThrow(/auth\.mode/);
  });

  it('rejects unknown keys in the file', () => {
    const dir = tmp();
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ server: { prot: 1 }, extra: true }));
    expect(() => loadConfig({ env: {}, file, cwd: dir })).toThrow(
      /server\.prot: unknown key[\s\S]*extra: unknown key|extra: unknown key[\s\S]*server\.prot: unknown key/,
    );
  });

  it('reports an unreadable or malformed file without its content', () => {
    const dir = tmp();
    const file = path.join(dir, 'c.json');
    writeFileSync(file, '{ "server": ');
    expect(() => loadConfig({ env: {}, file, cwd: dir })).toThrow(/c\.json: not valid JSON/);
    expect(() => loadConfig({ env: {}, file: path.join(dir, 'missing.yaml'), cwd: dir })).toThrow(
      /cannot be read/,
    );
  });

  it("uses a command's defaults only where no layer sets the key", () => {
    const dir = tmp();
    const defaults = { dataDir: '/state/bastion' };
    expect(loadConfig({ env: {}, cwd: dir, defaults }).dataDir).toBe('/state/bastion');
    expect(loadConfig({ env: { BASTION_DATA_DIR: './mine' }, cwd: dir, defaults }).dataDir).toBe('./mine');
  });

  it('reads the standard OpenTelemetry variables and requires Redis for Redis-backed limits', () => {
    const config = loadConfig({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-token=abc',
        OTEL_SERVICE_NAME: 'edge-bastion',
      },
      cwd: tmp(),
    });
    expect(config.tracing).toEqual({
      otlpEndpoint: 'http://collector:4318',
      otlpHeaders: 'x-token=abc',
      serviceName: 'edge-bastion',
    });
    expect(() => loadConfig({ env: { BASTION_RATE_LIMIT_STORAGE: 'redis' }, cwd: tmp() })).toThrow(
      /redis\.url: required when rateLimit\.storage is redis/,
    );
  });
});
