import { describe, expect, it } from '@jest/globals';
import { applyEdits } from './text-edit.js';
import { ToolRefusal } from '../tools/tool.errors.js';

describe('applyEdits', () => {
  it('replaces exact text and returns a fenced unified diff', () => {
    const out = applyEdits('a\nb\nc\n', [{ oldText: 'b', newText: 'B' }], 'x.txt');
    expect(out.content).toBe('a\nB\nc\n');
    expect(out.diff).toMatch(/^```diff\n/);
    expect(out.diff).toContain('-b');
    expect(out.diff).toContain('+B');
    expect(out.diff).toContain('--- x.txt');
  });

  it('matches across CRLF and keeps the file in CRLF', () => {
    const out = applyEdits('one\r\ntwo\r\nthree\r\n', [{ oldText: 'one\ntwo', newText: 'uno\ndos' }], 'w.txt');
    expect(out.content).toBe('uno\r\ndos\r\nthree\r\n');
  });

  it('tolerates indentation differences and keeps the file indentation', () => {
    const file = 'function f() {\n    return 1;\n}\n';
    const out = applyEdits(file, [{ oldText: 'return 1;', newText: 'return 2;' }], 'f.js');
    expect(out.content).toBe('function f() {\n    return 2;\n}\n');
    const loose = applyEdits(file, [{ oldText: '  function f() {\n return 1;', newText: 'function g() {\n  return 3;' }], 'f.js');
    expect(loose.content).toContain('function g() {');
    expect(loose.content).toContain('return 3;');
  });

  it('applies edits in order and refuses when one does not match', () => {
    expect(applyEdits('x', [{ oldText: 'x', newText: 'y' }, { oldText: 'y', newText: 'z' }], 'p').content).toBe('z');
    expect(() => applyEdits('abc', [{ oldText: 'nope', newText: '' }], 'p')).toThrow(ToolRefusal);
  });

  it('uses a longer fence when the diff itself contains backticks', () => {
    const out = applyEdits('```\ncode\n```\n', [{ oldText: 'code', newText: 'more' }], 'r.md');
    expect(out.diff.startsWith('````diff')).toBe(true);
  });
});
