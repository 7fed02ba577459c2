// @ts-check
// Stress test: steps up to three times the average (60 virtual users) and holds it.
// Shape and thresholds: lib/scenarios.js. Settings: load/README.md.
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e API_KEY=$KEY load/stress.js
import { buildOptions } from './lib/config.js';
import { iteration, seed } from './lib/mcp.js';

export const options = buildOptions('stress');

export function setup() {
  seed();
}

export default function () {
  iteration();
}
