import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Parses YAML, loading the parser on first use: a server configured by JSON or the environment never loads it. */
export function parseYaml(text: string): unknown {
  const { parse } = require('yaml') as typeof import('yaml');
  return parse(text);
}
