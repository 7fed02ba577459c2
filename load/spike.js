// @ts-check
// Spike test: a quiet baseline, a surge to 100 virtual users in 10 s, and back down.
// Shape and thresholds: lib/scenarios.js. Settings: load/README.md.
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e API_KEY=$KEY load/spike.js
import { buildOptions } from './lib/config.js';
import { iteration, seed } from './lib/mcp.js';

export const options = buildOptions('spike');

export function setup() {
  seed();
}

export default function () {
  iteration();
}
