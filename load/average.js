// @ts-check
// Average load: ramp to the expected daily peak (20 virtual users), hold 5 minutes, ramp down.
// Shape and thresholds: lib/scenarios.js. Settings: load/README.md.
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e API_KEY=$KEY load/average.js
import { buildOptions } from './lib/config.js';
import { iteration, seed } from './lib/mcp.js';

export const options = buildOptions('average');

export function setup() {
  seed();
}

export default function () {
  iteration();
}
