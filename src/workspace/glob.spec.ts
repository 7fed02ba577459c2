import { describe, expect, it } from '@jest/globals';
import { compileGlob, compileGlobs, GlobSyntaxError } from './glob.js';

describe('compileGlob', () => {
  const cases: Array<[string, string, boolean]> = [
    ['*.ts', 'a.ts', true],
    ['*.ts', 'dir/a.ts', false],
    ['**/*.ts', 'a.ts', true],
    ['**/*.ts', 'x/y/z.ts', true],
    ['**/*.ts', 'x/y/z.js', false],
    ['src/**', 'src/a/b', true],
    ['src/**', 'srcx/a', false],
    ['**/.env*', '.env', true],
    ['**/.env*', 'a/b/.env.local', true],
    ['.git/**', '.git/config', true],
    ['{a,b}/*.js', 'b/x.js', true],
    ['{a,b}/*.js', 'c/x.js', false],
    ['{a,{b,c}}.md', 'c.md', true],
    ['file?.txt', 'file1.txt', true],
    ['file?.txt', 'file12.txt', false],
    ['[abc].txt', 'b.txt', true],
    ['[!abc].txt', 'b.txt', false],
    ['[!abc].txt', 'd.txt', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['(x)+.txt', '(x)+.txt', true],
    ['**/id_rsa*', 'keys/id_rsa.pub', true],
  ];
  it.each(cases)('%s against %s is %s', (pattern, input, expected) => {
    expect(compileGlob(pattern)(input)).toBe(expected);
  });

  it('matches a star bomb in linear time', () => {
    const match = compileGlob('*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b');
    const started = performance.now();
    expect(match('a'.repeat(5000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('does not expand a huge brace range or nested braces', () => {
    expect(compileGlob('{1..1000000000}')('5')).toBe(false);
    const nested = '{a,b}'.repeat(40);
    expect(compileGlob(nested)('ab'.repeat(20))).toBe(true);
  });

  it('refuses unclosed and over-deep braces', () => {
    expect(() => compileGlob('{a,b')).toThrow(GlobSyntaxError);
    expect(() => compileGlob('{'.repeat(20) + '}'.repeat(20))).toThrow(GlobSyntaxError);
  });

  it('combines patterns', () => {
    const any = compileGlobs(['*.pem', '**/*.key']);
    expect(any('a.pem')).toBe(true);
    expect(any('x/y.key')).toBe(true);
    expect(any('x/y.txt')).toBe(false);
    expect(compileGlobs([])('anything')).toBe(false);
  });

  it('matches regardless of case when asked (deny patterns), and by case otherwise', () => {
    const deny = compileGlobs(['**/.env*', '**/*.pem', '**/*.key'], { ignoreCase: true });
    for (const name of ['.ENV', '.Env', 'sub/.eNv.LOCAL', 'x.PEM', 'k.Key']) expect(deny(name)).toBe(true);
    expect(deny('notes.txt')).toBe(false);
    expect(compileGlobs(['**/*.pem'])('x.PEM')).toBe(false);
  });
});
