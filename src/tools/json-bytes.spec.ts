import { describe, expect, it } from '@jest/globals';
import { jsonBytes } from './json-bytes.js';

const exact = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));

describe('jsonBytes', () => {
  it.each([
    ['plain text', 'hello world'],
    ['quotes, backslashes and control characters', 'a "b" \\ c\n\t\u0001'],
    ['multi-byte text', 'héllo wörld — ✓ 日本語'],
    ['astral characters and a lone surrogate', 'emoji 😀 and \ud800 alone'],
    ['numbers, booleans and null', [1, -2.5, 1e21, true, false, null]],
    ['nested objects with skipped members', { a: 'x', b: undefined, c: [undefined, { d: 'é' }], e: {} }],
    ['a date (toJSON)', { when: new Date(0) }],
    ['an empty array', []],
  ])('equals the UTF-8 length of JSON.stringify for %s', (_name, value) => {
    expect(jsonBytes(value)).toBe(exact(value));
  });
});
