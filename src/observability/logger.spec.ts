import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { REDACTED_PATHS } from './logger.js';

describe('REDACTED_PATHS', () => {
  it('censors credentials and content passed by mistake, at the top level or one level down', () => {
    let line = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        line += chunk.toString();
        done();
      },
    });
    pino({ redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, sink).info(
      {
        token: 't0p',
        apiKey: 'k3y',
        provider: { apiKey: 'k3y2' },
        result: { content: 'f1le' },
        tool: 'read',
      },
      'x',
    );
    expect(line).not.toMatch(/t0p|k3y|f1le/);
    expect(JSON.parse(line)).toMatchObject({ token: '[redacted]', tool: 'read' });
  });
});
