import pino, { type DestinationStream, type Logger } from 'pino';
import { redactSecrets } from './secret-redaction.js';

export interface LoggerOptions {
  level: string;
  /** stdout for the HTTP server; stderr for stdio, whose stdout carries protocol bytes only. */
  to: 'stdout' | 'stderr';
  /** Human-readable lines, for development. */
  pretty?: boolean;
  /** Fields added to every line (the trace id). */
  mixin?: () => Record<string, unknown>;
}

/**
 * Paths that never reach a log line. Request serializers log no headers at all; these catch a credential
 * or file content that a log call passes by mistake.
 */
export const REDACTED_PATHS = [
  'authorization',
  'token',
  'apiKey',
  'secret',
  'password',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.authorization',
  '*.token',
  '*.apiKey',
  '*.key',
  '*.secret',
  '*.password',
  '*.content',
  '*.arguments',
  'params.arguments',
];

/** The process logger: JSON lines, redacted, with `service: bastion` on each. */
export function createLogger(options: LoggerOptions): Logger {
  const fd = options.to === 'stdout' ? 1 : 2;
  return pino(
    {
      level: options.level,
      base: { service: 'bastion' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: redactedError },
      hooks: {
        // Messages are Bastion's own words; a secret can still arrive inside an interpolated argument.
        logMethod(args, method) {
          method.apply(
            this,
            args.map((arg) => (typeof arg === 'string' ? redactSecrets(arg) : arg)) as never,
          );
        },
      },
      ...(options.mixin && { mixin: options.mixin }),
    },
    options.pretty ? prettyStream(fd) : pino.destination({ dest: fd, sync: false }),
  );
}

/** Errors are logged with message and stack, minus anything shaped like a secret (a provider echoing a key). */
function redactedError(error: unknown): unknown {
  const serialized = pino.stdSerializers.err(error as Error) as unknown as Record<string, unknown>;
  if (typeof serialized !== 'object' || serialized === null) return serialized;
  for (const field of ['message', 'stack'] as const) {
    const value = serialized[field];
    if (typeof value === 'string') serialized[field] = redactSecrets(value);
  }
  return serialized;
}

function prettyStream(fd: 1 | 2): DestinationStream {
  return pino.transport({ target: 'pino-pretty', options: { destination: fd, colorize: false } });
}
