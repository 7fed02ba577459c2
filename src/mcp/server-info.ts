import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export const VERSION: string = pkg.version;

export const SERVER_INFO = {
  name: 'bastion',
  title: 'Bastion',
  version: VERSION,
} as const;

export const SERVER_INSTRUCTIONS =
  'Bastion serves one workspace directory. Paths are relative to the workspace root ("." is the root); ' +
  'absolute paths inside it are accepted. Secrets and .git are protected and hidden. Use read_text_file with ' +
  'head or tail for large files, search_files to find files by name and grep_files to search their contents.';
