// `npm start` builds first when dist/ is missing or older than any source file.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(full) : statSync(full).mtimeMs);
  }
  return latest;
}

const built = 'dist/cli.js';
if (
  !existsSync(built) ||
  statSync(built).mtimeMs < Math.max(newest('src'), statSync('package.json').mtimeMs)
) {
  execSync('npm run build', { stdio: 'inherit' });
}
