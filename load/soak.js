// @ts-check
// Soak test: the average load held for an hour (DURATION=8h for a full soak).
// Shape and thresholds: lib/scenarios.js. Settings: load/README.md.
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e API_KEY=$KEY load/soak.js
import { buildOptions } from './lib/config.js';
import { iteration, seed } from './lib/mcp.js';

export const options = buildOptions('soak');

export function setup() {
  seed();
}

export default function () {
  iteration();
}
