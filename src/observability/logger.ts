import pino, { type Logger } from 'pino';

/**
 * The process logger. It always writes to stderr: in stdio mode stdout carries protocol bytes only, and
 * one destination for both modes keeps operators' log collection the same.
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { service: 'bastion' },
      redact: {
        paths: ['req.headers.authorization', '*.authorization', '*.token', '*.apiKey'],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: 2, sync: false }),
  );
}
