// @ts-check
// Smoke test: two virtual users for a minute. Run it first, after a deploy, and before any larger test.
// Shape and thresholds: lib/scenarios.js. Settings: load/README.md.
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e API_KEY=$KEY load/smoke.js
import { buildOptions } from './lib/config.js';
import { iteration, seed } from './lib/mcp.js';

export const options = buildOptions('smoke');

export function setup() {
  seed();
}

export default function () {
  iteration();
}
