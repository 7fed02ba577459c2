import { StringDecoder } from 'node:string_decoder';
import type { OpenFile } from './open-file.js';
import type { OpenedFile } from './sandbox.js';
import { quote, SandboxRefusal } from './sandbox.errors.js';

const CHUNK = 64 * 1024;

export interface TextSlice {
  text: string;
  /** True when the byte bound stopped the read before the requested lines were found. */
  truncated: boolean;
}

/** Reads a whole regular file, refusing it before reading when it is larger than `maxBytes`. */
export async function readAll(
  file: Pick<OpenedFile, 'handle' | 'stats'>,
  maxBytes: number,
  clientPath: string,
): Promise<Buffer> {
  if (file.stats.size > maxBytes) throw tooLarge(clientPath, file.stats.size, maxBytes);
  // Read at most one byte past the bound: a file that grew after fstat is still refused, never loaded whole.
  const buffer = Buffer.allocUnsafe(Math.min(file.stats.size, maxBytes) + 1);
  let length = 0;
  for (;;) {
    const wanted = buffer.length - length;
    const bytesRead = await file.handle.read(buffer, length, wanted, length);
    length += bytesRead;
    if (length > maxBytes) throw tooLarge(clientPath, length, maxBytes);
    // A regular file reads short only at its end.
    if (bytesRead < wanted || length === buffer.length) break;
  }
  return buffer.subarray(0, length);
}

/** The first `lines` lines, reading forward at most `maxBytes` (a file without newlines stays bounded). */
export async function readHead(handle: OpenFile, lines: number, maxBytes: number): Promise<TextSlice> {
  const decoder = new StringDecoder('utf8');
  const chunk = Buffer.allocUnsafe(Math.min(CHUNK, maxBytes));
  let text = '';
  let newlines = 0;
  let position = 0;
  while (newlines < lines && position < maxBytes) {
    const bytesRead = await handle.read(chunk, 0, Math.min(chunk.length, maxBytes - position), position);
    if (bytesRead === 0) return { text: firstLines(text + decoder.end(), lines), truncated: false };
    position += bytesRead;
    for (let i = 0; i < bytesRead; i++) if (chunk[i] === 0x0a) newlines++;
    text += decoder.write(chunk.subarray(0, bytesRead));
  }
  const complete = newlines >= lines;
  return { text: firstLines(text, lines), truncated: !complete && position >= maxBytes };
}

/** The last `lines` lines, reading backward at most `maxBytes`. */
export async function readTail(handle: OpenFile, size: number, lines: number, maxBytes: number): Promise<TextSlice> {
  const chunks: Buffer[] = [];
  let position = size;
  let read = 0;
  let newlines = 0;
  // One newline more than asked for: a file's final newline ends the last line rather than starting a new one.
  while (position > 0 && newlines <= lines && read < maxBytes) {
    const length = Math.min(CHUNK, position, maxBytes - read);
    position -= length;
    const chunk = Buffer.allocUnsafe(length);
    const bytesRead = await handle.read(chunk, 0, length, position);
    chunks.unshift(chunk.subarray(0, bytesRead));
    read += bytesRead;
    for (let i = 0; i < bytesRead; i++) if (chunk[i] === 0x0a) newlines++;
  }
  let text = Buffer.concat(chunks).toString('utf8').replace(/\r\n/g, '\n');
  const endsWithNewline = text.endsWith('\n');
  if (endsWithNewline) text = text.slice(0, -1);
  const all = text.split('\n');
  const truncated = position > 0 && all.length < lines;
  return { text: all.slice(-lines).join('\n'), truncated };
}

function firstLines(text: string, lines: number): string {
  const normalized = text.replace(/\r\n/g, '\n');
  const parts = normalized.split('\n');
  if (parts.length > lines) return parts.slice(0, lines).join('\n');
  return normalized.endsWith('\n') ? normalized.slice(0, -1) : normalized;
}

export function tooLarge(clientPath: string, size: number, limit: number): SandboxRefusal {
  return new SandboxRefusal(
    'too_large',
    `Refused ${quote(clientPath)}: it is ${size} bytes, over the ${limit}-byte limit. Read part of it with head or tail.`,
  );
}
