import { describe, expect, it } from '@jest/globals';
import { own } from './own.js';

describe('own', () => {
  it("finds a record's own keys and nothing inherited from Object.prototype", () => {
    const scopeMap: Record<string, string[]> = { reader: ['files:read'] };
    expect(own(scopeMap, 'reader')).toEqual(['files:read']);
    for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'missing'])
      expect(own(scopeMap, key)).toBeUndefined();
  });
});
