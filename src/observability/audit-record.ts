import { hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export type AuditKind = 'tool_call' | 'operation' | 'auth_failure' | 'admin' | 'agent_step' | 'conversation';

export const AUDIT_KINDS: readonly AuditKind[] = [
  'tool_call',
  'operation',
  'auth_failure',
  'admin',
  'agent_step',
  'conversation',
];

/** What callers hand in. It has no field for file contents, on purpose. */
export interface AuditEvent {
  kind: AuditKind;
  /** The principal id, or 'anonymous'. */
  actor: string;
  /** The tool name, the operation's MCP method ('resources/read'), 'authenticate', 'conversation.delete', ... */
  action: string;
  /** A workspace-relative path, a key id or a conversation id; never a host path or content. */
  target?: string;
  /** 'ok', 'refused', 'error', 'denied', ... */
  outcome: string;
  code?: string;
  requestId?: string;
}

/** What is written: the event, sealed into the chain. */
export interface AuditRecord extends AuditEvent {
  /** ISO 8601 UTC, millisecond precision. */
  ts: string;
  /** 1, 2, 3, ... continuing across rotated files. */
  seq: number;
  /** The previous record's hash, or GENESIS_HASH for the very first record of a chain. */
  prev: string;
  /** Hex SHA-256 of the record's canonical serialization (see canonicalAuditJson). */
  hash: string;
}

export type AuditVerdict =
  | {
      ok: true;
      records: number;
      lastSeq: number;
      lastHash: string;
      /** The prev of the first record: GENESIS_HASH for a whole chain, else the trusted starting point. */
      anchor: string;
    }
  | { ok: false; file: string; records: number; line: number; reason: string };

export interface VerifyOptions {
  /** The hash of the last record of the previous (older) file; the first record's prev must equal it. */
  previousHash?: string;
  /** The seq of that record; the first record's seq must follow it. */
  previousSeq?: number;
}

/** The prev of the first record ever written. */
export const GENESIS_HASH = '0'.repeat(64);

const REQUIRED = ['ts', 'seq', 'kind', 'actor', 'action', 'outcome', 'prev', 'hash'] as const;
const OPTIONAL = ['target', 'code', 'requestId'] as const;
const FIELDS = new Set<string>([...REQUIRED, ...OPTIONAL]);
const HEX64 = /^[0-9a-f]{64}$/;
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

type Unsealed = Omit<AuditRecord, 'hash'>;

/**
 * The canonical serialization that `hash` covers: a JSON object with no whitespace and the keys in this
 * fixed order: ts, seq, kind, actor, action, target, outcome, code, requestId, prev. Absent optional keys
 * (target, code, requestId) are left out, never written as null. Strings are escaped as ECMAScript
 * JSON.stringify does (the same rules as RFC 8785 §3.2.2.2); seq is a plain decimal integer. The hash is
 * the lowercase hex SHA-256 of those UTF-8 bytes.
 *
 * A written line is that text with `,"hash":"<hex>"` inserted before the closing brace, so another
 * verifier can also recompute the hash from the line's bytes by cutting that suffix back out.
 */
export function canonicalAuditJson(record: Unsealed): string {
  // Property order is insertion order, and JSON.stringify drops undefined values.
  return JSON.stringify({
    ts: record.ts,
    seq: record.seq,
    kind: record.kind,
    actor: record.actor,
    action: record.action,
    target: record.target ?? undefined,
    outcome: record.outcome,
    code: record.code ?? undefined,
    requestId: record.requestId ?? undefined,
    prev: record.prev,
  });
}

/** Seals an event as record `seq` of a chain whose previous record had hash `prev`. */
export function sealRecord(event: AuditEvent, prev: string, seq: number, now: Date): AuditRecord {
  // Security: copy only the known fields, so nothing else a caller's object carries is ever written.
  const { kind, actor, action, outcome } = event;
  const record: Unsealed = { ts: now.toISOString(), seq, kind, actor, action, outcome, prev };
  // Assigned, not spread: this runs on every tool call, and conditional spreads were most of its cost.
  if (event.target != null) record.target = event.target;
  if (event.code != null) record.code = event.code;
  if (event.requestId != null) record.requestId = event.requestId;
  return Object.assign(record, { hash: sha256(canonicalAuditJson(record)) });
}

/** The line written for a record (without the newline). */
export function auditLine(record: AuditRecord): string {
  return `${canonicalAuditJson(record).slice(0, -1)},"hash":"${record.hash}"}`;
}

/** Parses and checks one line on its own: its shape, its hash and its canonical form. */
export function parseAuditLine(line: string): { record: AuditRecord } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { error: 'invalid JSON: a truncated or garbage line' };
  }
  const shapeError = checkShape(value);
  if (shapeError) return { error: shapeError };
  const record = value as AuditRecord;
  if (sha256(canonicalAuditJson(record)) !== record.hash)
    return { error: 'hash mismatch: the record was edited after it was written' };
  if (auditLine(record) !== line)
    return { error: 'not in canonical form: the line was edited after it was written' };
  return { record };
}

/**
 * Verifies one audit file: every line a well-formed record whose hash holds, seq rising by one and prev
 * equal to the previous record's hash. Without `previousHash` the first record's prev is trusted as the
 * anchor (reported in the verdict), except that a first record with seq 1 must start from GENESIS_HASH;
 * this is what lets a rotated file, or a log whose oldest files were pruned, be verified on its own.
 * Rejects only when the file cannot be read.
 */
export async function verifyAuditLog(file: string, options: VerifyOptions = {}): Promise<AuditVerdict> {
  const chain = new ChainCheck(options);
  let line = 0;
  for await (const { text, terminated } of readLines(file)) {
    line += 1;
    const reason = terminated ? chain.accept(text) : 'incomplete last line (no newline): the file was cut';
    if (reason) return { ok: false, file, records: chain.records, line, reason };
  }
  return chain.verdict();
}

/** Verifies rotated files in order, oldest first, as one chain that continues from file to file. */
export async function verifyAuditLogs(files: readonly string[]): Promise<AuditVerdict> {
  let total = 0;
  let anchor: string | undefined;
  let previous: VerifyOptions = {};
  let last: AuditVerdict = { ok: true, records: 0, lastSeq: 0, lastHash: GENESIS_HASH, anchor: GENESIS_HASH };
  for (const file of files) {
    const verdict = await verifyAuditLog(file, previous);
    if (!verdict.ok) return { ...verdict, records: total + verdict.records };
    total += verdict.records;
    if (verdict.records === 0 && anchor === undefined) continue;
    anchor ??= verdict.anchor;
    previous = { previousHash: verdict.lastHash, previousSeq: verdict.lastSeq };
    last = verdict;
  }
  return { ...last, records: total, anchor: anchor ?? GENESIS_HASH };
}

/** Follows the chain line by line; accept() returns why a line breaks it, if it does. */
class ChainCheck {
  records = 0;
  private lastSeq: number;
  private lastHash: string;
  private anchor: string | undefined;

  constructor(private readonly options: VerifyOptions) {
    this.lastSeq = options.previousSeq ?? 0;
    this.lastHash = options.previousHash ?? GENESIS_HASH;
    this.anchor = options.previousHash;
  }

  accept(text: string): string | undefined {
    if (text === '') return 'empty line';
    const parsed = parseAuditLine(text);
    if ('error' in parsed) return parsed.error;
    const { record } = parsed;
    const reason = this.anchor === undefined ? this.startChain(record) : this.follow(record);
    if (reason) return reason;
    this.records += 1;
    this.lastSeq = record.seq;
    this.lastHash = record.hash;
    return undefined;
  }

  verdict(): AuditVerdict {
    const anchor = this.anchor ?? GENESIS_HASH;
    return { ok: true, records: this.records, lastSeq: this.lastSeq, lastHash: this.lastHash, anchor };
  }

  private startChain(record: AuditRecord): string | undefined {
    if (record.seq === 1 && record.prev !== GENESIS_HASH)
      return 'the first record of a chain (seq 1) must have a prev of 64 zeros';
    if (record.seq > 1 && record.prev === GENESIS_HASH)
      return `seq ${record.seq} has the prev of a first record: records before it were removed`;
    this.anchor = record.prev;
    return undefined;
  }

  private follow(record: AuditRecord): string | undefined {
    const expected = this.lastSeq + 1;
    const seqKnown = this.records > 0 || this.options.previousSeq !== undefined;
    if (seqKnown && record.seq !== expected)
      return `seq ${record.seq} where ${expected} was expected: a record was removed, inserted or reordered`;
    if (record.prev !== this.lastHash)
      return "prev does not match the previous record's hash: a record was removed, edited or reordered";
    return undefined;
  }
}

function checkShape(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const fields = value as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !FIELDS.has(key));
  if (unknown !== undefined) return `unknown field ${JSON.stringify(unknown.slice(0, 40))}`;
  const missing = REQUIRED.find((key) => !(key in fields));
  if (missing !== undefined) return `missing field "${missing}"`;
  if (typeof fields.ts !== 'string' || !ISO_UTC.test(fields.ts)) return 'field "ts" is not an ISO UTC time';
  if (!Number.isSafeInteger(fields.seq) || (fields.seq as number) < 1)
    return 'field "seq" is not a positive integer';
  if (!AUDIT_KINDS.includes(fields.kind as AuditKind)) return 'field "kind" is not a known kind';
  for (const key of ['actor', 'action', 'outcome', ...OPTIONAL] as const) {
    if (key in fields && typeof fields[key] !== 'string') return `field "${key}" is not a string`;
  }
  for (const key of ['prev', 'hash'] as const) {
    if (typeof fields[key] !== 'string' || !HEX64.test(fields[key]))
      return `field "${key}" is not a hex SHA-256`;
  }
  return undefined;
}

function sha256(text: string): string {
  return hash('sha256', text, 'hex');
}

/** Lines split on LF only; the last one is reported unterminated if the file does not end with LF. */
async function* readLines(file: string): AsyncGenerator<{ text: string; terminated: boolean }> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    const buffer = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let end = buffer.indexOf(0x0a); end !== -1; end = buffer.indexOf(0x0a, start)) {
      yield { text: buffer.toString('utf8', start, end), terminated: true };
      start = end + 1;
    }
    rest = buffer.subarray(start);
  }
  if (rest.length > 0) yield { text: rest.toString('utf8'), terminated: false };
}
