import { describe, expect, it } from '@jest/globals';
import { REDACTION, redactSecrets } from './secret-redaction.js';

describe('redactSecrets', () => {
  it.each([
    ['an Anthropic key', 'Incorrect API key: sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv'],
    ['an OpenAI project key', 'Incorrect API key provided: sk-proj-abcdefghijklmnop1234'],
    ['a Bastion API key', `key bst_0123456789ab_${'x'.repeat(43)} refused`],
    ['a JWT', 'token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl'],
    ['a bearer credential', 'authorization: Bearer abcdef123456'],
    ['a GitHub token', `ghp_${'a'.repeat(36)}`],
    ['an AWS access key id', 'AKIAABCDEFGHIJKLMNOP'],
    ['a private key', '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----'],
  ])('removes %s', (_name, text) => {
    const out = redactSecrets(text);
    expect(out).toContain(REDACTION);
    expect(out).not.toMatch(/sk-ant-api03|sk-proj-abc|x{43}|c2lnbmF0|abcdef123456|a{36}|AKIAAB|MIIEow/);
  });

  it('keeps the name of an assigned secret and drops its value', () => {
    expect(redactSecrets('password=hunter2; api_key: "abc def"')).toBe(
      `password=${REDACTION}; api_key: ${REDACTION}`,
    );
  });

  it('leaves ordinary text alone', () => {
    const text = 'read_text_file src/sk-notes.md: 120 bytes (request 7f3a)';
    expect(redactSecrets(text)).toBe(text);
  });
});
