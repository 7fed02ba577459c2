import { describe, expect, it } from '@jest/globals';
import { printable } from './printable.js';

describe('printable', () => {
  it.each([
    ['a colour (CSI)', 'red \u001b[31;1malert\u001b[0m', 'red alert'],
    ['a colour in the one-byte CSI', 'red \u009b31malert', 'red alert'],
    ['a screen erase and a cursor move', '\u001b[2J\u001b[1;1Hclean', 'clean'],
    ['a window title (OSC ended by BEL)', '\u001b]0;owned\u0007name', 'name'],
    [
      'a hyperlink (OSC 8 ended by ST)',
      '\u001b]8;;https://evil.example\u001b\\click\u001b]8;;\u001b\\',
      'click',
    ],
    ['a DCS string', 'a\u001bPq#0;2;0;0;0\u001b\\b', 'ab'],
    ['a reset (two-byte escape)', 'before\u001bcafter', 'beforeafter'],
    ['a charset switch', '\u001b(0lqk\u001b(B', 'lqk'],
    ['NUL, BEL, backspace and DEL', 'a\u0000b\u0007c\bd\u007fe', 'abcde'],
    ['C1 controls', 'a\u0085b\u008dc', 'abc'],
    ['a right-to-left override', 'safe\u202eexe.txt', 'safeexe.txt'],
    ['bidirectional isolates and embeddings', '\u2066a\u2069\u202ab\u202c\u2067c\u2068d', 'abcd'],
  ])('removes %s', (_what, text, expected) => {
    expect(printable(text)).toBe(expected);
    expect(printable(text, { keepLines: true })).toBe(expected);
  });

  it('turns line breaks and tabs into spaces in one-line text, so a name cannot forge a report line', () => {
    expect(printable('name\n  ok: forged\r\nline\tend')).toBe('name   ok: forged line end');
  });

  it('keeps newlines and tabs in descriptions, and drops a carriage return that would overwrite a line', () => {
    expect(printable('Reads a file.\n\tpath: where\r\nnext', { keepLines: true })).toBe(
      'Reads a file.\n\tpath: where\nnext',
    );
    expect(printable('shown\rhidden', { keepLines: true })).toBe('shownhidden');
  });

  it('leaves text of any script alone', () => {
    const text = 'Café naïve 東京 مرحبا — “quoted” 🙂';
    expect(printable(text)).toBe(text);
  });

  it('drops the introducer of an unterminated sequence and keeps the rest as text', () => {
    expect(printable('a\u001b]0;title with no end')).toBe('a0;title with no end');
    expect(printable('a\u001b[31')).toBe('a31');
  });

  it('stays fast on a long run of unterminated sequences', () => {
    const hostile = '\u001b]x'.repeat(100_000) + '\u009dx'.repeat(100_000);
    const started = performance.now();
    expect(printable(hostile)).toBe('x'.repeat(200_000));
    expect(performance.now() - started).toBeLessThan(500);
  });
});
