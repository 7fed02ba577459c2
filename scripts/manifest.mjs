// Writes mcp_config.json from the built code (`npm run manifest`), or with --check fails when the committed
// file differs from what the code declares (CI runs it after the build).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FILE = path.join(REPO, 'mcp_config.json');

const { serverManifest } = await import(path.join(REPO, 'dist', 'mcp', 'server-manifest.js'));
const options = (await prettier.resolveConfig(FILE)) ?? {};
const text = await prettier.format(JSON.stringify(serverManifest()), { ...options, parser: 'json' });

if (process.argv.includes('--check')) {
  const committed = readFileSync(FILE, 'utf8');
  if (committed !== text) {
    process.stderr.write(
      'mcp_config.json differs from what the code declares: run `npm run manifest` and commit the result.\n',
    );
    process.exit(1);
  }
  process.stdout.write('mcp_config.json matches the code\n');
} else {
  writeFileSync(FILE, text);
  process.stdout.write(`wrote ${path.relative(process.cwd(), FILE) || FILE}\n`);
}
