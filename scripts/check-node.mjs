// `npm start` stops at once, in one line, on a Node.js older than package.json's engines.node.
import { readFileSync } from 'node:fs';

const wanted = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines.node;
const [major, minor] = wanted
  .replace(/^>=\s*/, '')
  .split('.')
  .map(Number);
const [haveMajor, haveMinor] = process.versions.node.split('.').map(Number);
if (haveMajor < major || (haveMajor === major && haveMinor < minor)) {
  process.stderr.write(
    `bastion: needs Node.js ${major}.${minor} or later (22 or 24 LTS); this is ${process.versions.node}.\n`,
  );
  process.exit(1);
}
