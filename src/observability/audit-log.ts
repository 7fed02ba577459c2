import { once, type EventEmitter } from 'node:events';
import { fchmod, fsync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import sonicBoom from 'sonic-boom';
import { BastionError } from '../common/bastion-error.js';
import type { BastionConfig } from '../config/config.schema.js';
import { redactSecrets } from './secret-redaction.js';
import { auditLine, GENESIS_HASH, parseAuditLine, sealRecord, type AuditEvent } from './audit-record.js';

/**
 * Where audit events go. record() never blocks and never throws into the request that records (a closed
 * log refuses the record and says so to its own error handler); flush() makes everything so far durable.
 */
export interface AuditSink {
  record(event: AuditEvent): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface FileAuditSinkOptions {
  /** Rotate before the current file would grow beyond this many bytes. Default 50 MiB. */
  maxBytes?: number;
  /** How many rotated files to keep; older ones are deleted. Default 10. */
  keep?: number;
  now?: () => Date;
  /** Failed writes and rotations; records are kept in order and retried. Default: a process warning. */
  onError?: (error: Error) => void;
}

export class AuditLogError extends BastionError {}

const DEFAULT_MAX_BYTES = 50 * 1024 * 1024;
const DEFAULT_KEEP = 10;
const TAIL_CHUNK = 64 * 1024;
const MAX_LINE = 1024 * 1024;
const STAMP = String.raw`\d{4}-\d\d-\d\dT\d{6}\.\d{3}Z`;
// A CommonJS package: to ESM its default export is module.exports, which carries the class as a property.
const { SonicBoom } = sonicBoom;

/** sonic-boom as used here: in buffer mode, which its typings leave out, as they do the fd it opened. */
interface BufferBoom extends EventEmitter {
  readonly fd: number;
  write(data: Buffer): boolean;
  end(): void;
}

/**
 * The audit log as JSONL files: one hash-chained record per line, appended in order through sonic-boom,
 * rotated by size to `<name>.<ISO time without colons>.jsonl` beside it, the chain continuing across files.
 * Records made during the few milliseconds a rotation takes all go to the new file, which may therefore
 * start above maxBytes. One process owns a log: two writers would interleave two chains.
 */
export class FileAuditSink implements AuditSink {
  /** Lines recorded while the file is being rotated, for the new file. */
  private pending: Buffer[] | undefined;
  private rotation: Promise<void> | undefined;
  private rotationFailed = false;
  private closing: Promise<void> | undefined;
  /** Records refused since the log closed (during shutdown): reported once, counted here. */
  refusedAfterClose = 0;

  private constructor(
    readonly file: string,
    private writer: AuditFileWriter,
    private seq: number,
    private prev: string,
    private readonly settings: Required<FileAuditSinkOptions>,
  ) {}

  /**
   * Opens (or creates, mode 0600 in a directory created 0700) the log and continues the chain from its
   * last record. Refuses a log whose last line is not a valid record rather than start a new chain.
   */
  static async open(file: string, options: FileAuditSinkOptions = {}): Promise<FileAuditSink> {
    const settings = {
      maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
      keep: options.keep ?? DEFAULT_KEEP,
      now: options.now ?? (() => new Date()),
      onError: options.onError ?? ((error: Error) => process.emitWarning(error)),
    };
    if (!(settings.maxBytes > 0) || !Number.isInteger(settings.keep) || settings.keep < 0)
      throw new RangeError('maxBytes must be positive and keep a whole number.');
    const resolved = path.resolve(file);
    await mkdir(path.dirname(resolved), { recursive: true, mode: 0o700 });
    const head = await chainHead(resolved);
    const writer = await AuditFileWriter.open(resolved, settings.onError);
    return new FileAuditSink(resolved, writer, head.seq, head.prev, settings);
  }

  record(event: AuditEvent): void {
    if (this.closing) {
      if (this.refusedAfterClose++ === 0)
        this.settings.onError(
          new AuditLogError('audit_log_closed', 'A record came after the audit log closed.'),
        );
      return;
    }
    // A target is a path or an id; one that happens to look like a secret is not kept.
    const safe = event.target === undefined ? event : { ...event, target: redactSecrets(event.target) };
    const record = sealRecord(safe, this.prev, this.seq + 1, this.settings.now());
    const line = Buffer.from(`${auditLine(record)}\n`);
    this.seq = record.seq;
    this.prev = record.hash;
    if (!this.pending && this.shouldRotate(line.length)) this.startRotation();
    if (this.pending) this.pending.push(line);
    else this.writer.write(line);
  }

  async flush(): Promise<void> {
    if (this.closing) return this.closing;
    while (this.rotation) await this.rotation;
    await this.writer.sync();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.rotation) await this.rotation;
      await this.writer.close();
    })();
    return this.closing;
  }

  private shouldRotate(bytes: number): boolean {
    const size = this.writer.size;
    return !this.rotationFailed && size > 0 && size + bytes > this.settings.maxBytes;
  }

  private startRotation(): void {
    this.pending = [];
    this.rotation = this.rotate().finally(() => {
      this.rotation = undefined;
    });
  }

  private async rotate(): Promise<void> {
    const old = this.writer;
    let next = old;
    try {
      await old.sync();
      await rename(this.file, await this.rotatedName());
      next = await AuditFileWriter.open(this.file, this.settings.onError);
    } catch (error) {
      // Keep appending where we were: the chain stays whole, only the split into files is lost.
      this.rotationFailed = true;
      this.settings.onError(error as Error);
    }
    this.writer = next;
    for (const line of this.pending ?? []) next.write(line);
    this.pending = undefined;
    if (next === old) return;
    await old.close().catch(this.settings.onError);
    await this.prune().catch(this.settings.onError);
  }

  private async rotatedName(): Promise<string> {
    const stamp = this.settings.now().toISOString().replace(/:/g, '');
    const { dir, stem } = nameParts(this.file);
    for (let n = 0; ; n += 1) {
      const candidate = path.join(dir, `${stem}.${stamp}${n > 0 ? `-${n}` : ''}.jsonl`);
      if (!(await exists(candidate))) return candidate;
    }
  }

  private async prune(): Promise<void> {
    const rotated = await rotatedAuditFiles(this.file);
    const excess = rotated.slice(0, Math.max(0, rotated.length - this.settings.keep));
    await Promise.all(excess.map((file) => rm(file, { force: true })));
  }
}

/** For when auditing is off. */
export class NullAuditSink implements AuditSink {
  record(_event: AuditEvent): void {}
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The rotated files of an audit log, oldest first (the order `verifyAuditLogs` expects). */
export async function rotatedAuditFiles(file: string): Promise<string[]> {
  const { dir, stem } = nameParts(path.resolve(file));
  const pattern = new RegExp(`^${escapeRegExp(stem)}\\.(${STAMP})(?:-(\\d+))?\\.jsonl$`);
  const entries = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  return entries
    .map((name) => ({ name, match: pattern.exec(name) }))
    .filter((entry): entry is { name: string; match: RegExpExecArray } => entry.match !== null)
    .map(({ name, match }) => ({ name, stamp: match[1] as string, n: Number(match[2] ?? 0) }))
    .sort((a, b) => (a.stamp === b.stamp ? a.n - b.n : a.stamp < b.stamp ? -1 : 1))
    .map(({ name }) => path.join(dir, name));
}

/**
 * One open audit file. sonic-boom keeps writes ordered and batched off the caller's path; counting the
 * bytes handed in against those it reports written is what lets sync() wait for exactly what was recorded.
 */
class AuditFileWriter {
  private queued = 0;
  private written = 0;
  private failure: Error | undefined;
  private waiters: { until: number; resolve: () => void; reject: (error: Error) => void }[] = [];

  private constructor(
    private readonly boom: BufferBoom,
    private readonly fd: number,
    private readonly initialSize: number,
    onError: (error: Error) => void,
  ) {
    boom.on('write', (bytes: number) => {
      this.written += bytes;
      this.failure = undefined;
      this.settle();
    });
    boom.on('error', (error: Error) => {
      this.failure = error;
      for (const waiter of this.waiters.splice(0)) waiter.reject(error);
      onError(error);
    });
  }

  static async open(file: string, onError: (error: Error) => void): Promise<AuditFileWriter> {
    // Buffer mode: in utf8 mode sonic-boom re-measures its pending string on every write.
    const options = { dest: file, append: true, mkdir: true, mode: 0o600, contentMode: 'buffer' } as const;
    const boom = new SonicBoom(options) as unknown as BufferBoom;
    await once(boom, 'ready');
    const { fd } = boom;
    // Security: a log that existed before is tightened too; mode only applies when the file is created.
    await promisify(fchmod)(fd, 0o600);
    return new AuditFileWriter(boom, fd, (await stat(file)).size, onError);
  }

  /** Bytes in the file once everything queued is written. */
  get size(): number {
    return this.initialSize + this.queued;
  }

  write(line: Buffer): void {
    this.queued += line.length;
    this.boom.write(line);
  }

  /** Waits until everything queued so far is written, then fsyncs. */
  async sync(): Promise<void> {
    await this.drained(this.queued);
    await promisify(fsync)(this.fd);
  }

  async close(): Promise<void> {
    await this.sync();
    const closed = once(this.boom, 'close');
    this.boom.end();
    await closed;
  }

  private drained(until: number): Promise<void> {
    if (this.written >= until) return Promise.resolve();
    // sonic-boom retries a failed write only on the next write() call, so waiting would never end.
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ until, resolve, reject }));
  }

  private settle(): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((waiter) => waiter.until <= this.written);
    this.waiters = this.waiters.filter((waiter) => waiter.until > this.written);
    for (const waiter of ready) waiter.resolve();
  }
}

/** Where the chain continues: the last record of the log, or of its newest rotated file if it is empty. */
async function chainHead(file: string): Promise<{ seq: number; prev: string }> {
  for (const candidate of [file, ...(await rotatedAuditFiles(file)).reverse()]) {
    const last = await lastLine(candidate);
    if (last === undefined) continue;
    const parsed = parseAuditLine(last);
    if ('error' in parsed) throw corrupt(candidate, parsed.error);
    return { seq: parsed.record.seq, prev: parsed.record.hash };
  }
  return { seq: 0, prev: GENESIS_HASH };
}

/** The last line of a file read from its end; undefined for a missing or empty file. */
async function lastLine(file: string): Promise<string | undefined> {
  const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!handle) return undefined;
  try {
    const { size } = await handle.stat();
    if (size === 0) return undefined;
    let tail = Buffer.alloc(0);
    for (let position = size; position > 0 && tail.length <= MAX_LINE;) {
      const length = Math.min(TAIL_CHUNK, position);
      position -= length;
      const chunk = Buffer.alloc(length);
      await handle.read(chunk, 0, length, position);
      tail = Buffer.concat([chunk, tail]);
      // A crash mid-write leaves a partial line; appending after it would corrupt the next record too.
      if (position + length === size && tail.at(-1) !== 0x0a)
        throw corrupt(file, 'the last line is incomplete (no newline)');
      const start = tail.subarray(0, -1).lastIndexOf(0x0a);
      if (start !== -1 || position === 0) return tail.toString('utf8', start + 1, tail.length - 1);
    }
    throw corrupt(file, 'the last line is too long to be a record');
  } finally {
    await handle.close();
  }
}

function corrupt(file: string, reason: string): AuditLogError {
  return new AuditLogError(
    'audit_log_corrupt',
    `Audit log ${file} does not end with a valid record (${reason}); refusing to start a new chain over it. ` +
      'Check it with `bastion audit verify`, then move it aside.',
  );
}

function nameParts(file: string): { dir: string; stem: string } {
  const base = path.basename(file);
  return { dir: path.dirname(file), stem: base.endsWith('.jsonl') ? base.slice(0, -'.jsonl'.length) : base };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
}

export function auditFilePath(config: BastionConfig): string {
  return path.resolve(config.audit.file ?? path.join(config.dataDir, 'audit', 'audit.jsonl'));
}
