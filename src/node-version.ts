import { readFileSync } from 'node:fs';

// Imported first by the command line: on a Node.js older than package.json's engines.node, stop at once
// with one line naming the version, before anything that needs a newer runtime is loaded.
const { engines } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  engines: { node: string };
};
const [major = 0, minor = 0] = engines.node
  .replace(/^>=\s*/, '')
  .split('.')
  .map(Number);
const [haveMajor = 0, haveMinor = 0] = process.versions.node.split('.').map(Number);
if (haveMajor < major || (haveMajor === major && haveMinor < minor)) {
  process.stderr.write(
    `bastion: needs Node.js ${major}.${minor} or later (22 or 24 LTS); this is ${process.versions.node}.\n`,
  );
  process.exit(2);
}
