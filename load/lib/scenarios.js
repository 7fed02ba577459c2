// @ts-check
// The load shapes and pass/fail thresholds, as plain data with no k6 import: the k6 entry scripts build
// their options from them, and `node bench/scenarios.mjs <name>` runs the same shapes without k6.

/**
 * One stage: ramp linearly to `target` (a fraction of the scenario's peak virtual users) over `seconds`.
 * The stage marked `hold` is the steady part; the DURATION variable replaces its length.
 * @typedef {{ seconds: number, target: number, hold?: boolean }} ShapeStage
 * @typedef {{ description: string, peakVus: number, start: number, stages: ShapeStage[] }} Shape
 *   start: the virtual users at time 0, as a fraction of the peak
 */

/** @type {{ [name: string]: Shape }} */
export const SCENARIOS = {
  smoke: {
    description: 'A few virtual users for a minute: the scripts, the seed files and the server all work.',
    peakVus: 2,
    start: 1,
    stages: [{ seconds: 60, target: 1, hold: true }],
  },
  average: {
    description: 'The expected daily peak: ramp up, hold, ramp down.',
    peakVus: 20,
    start: 0,
    stages: [
      { seconds: 60, target: 1 },
      { seconds: 300, target: 1, hold: true },
      { seconds: 60, target: 0 },
    ],
  },
  stress: {
    description: 'Past the average in steps, to three times it: where latency and errors start to give.',
    peakVus: 60,
    start: 0,
    stages: [
      { seconds: 60, target: 1 / 3 },
      { seconds: 120, target: 1 / 3 },
      { seconds: 60, target: 2 / 3 },
      { seconds: 120, target: 2 / 3 },
      { seconds: 60, target: 1 },
      { seconds: 300, target: 1, hold: true },
      { seconds: 60, target: 0 },
    ],
  },
  spike: {
    description: 'A quiet baseline, a sudden surge to the peak in 10 s, and back: recovery without errors.',
    peakVus: 100,
    start: 0,
    stages: [
      { seconds: 10, target: 0.05 },
      { seconds: 30, target: 0.05 },
      { seconds: 10, target: 1 },
      { seconds: 60, target: 1, hold: true },
      { seconds: 10, target: 0.05 },
      { seconds: 30, target: 0.05 },
      { seconds: 10, target: 0 },
    ],
  },
  soak: {
    description: 'The average load for an hour (DURATION=8h for a full soak): leaks, growth, slow decay.',
    peakVus: 20,
    start: 0,
    stages: [
      { seconds: 120, target: 1 },
      { seconds: 3600, target: 1, hold: true },
      { seconds: 120, target: 0 },
    ],
  },
};

/** Pause of a virtual user between iterations, in seconds (THINK_TIME). */
export const DEFAULT_THINK_SECONDS = 1;

/**
 * Pass/fail criteria, in k6 threshold syntax: under 1% failed requests, 95% of requests within 200 ms, over
 * 99% of checks passing.
 * @type {{ [metric: string]: string[] }}
 */
export const THRESHOLDS = {
  http_req_failed: ['rate<0.01'],
  http_req_duration: ['p(95)<200'],
  checks: ['rate>0.99'],
};

/**
 * `converse` is a quarter of the mix's requests, so a slow tail of its own would hardly move the overall
 * p95: it gets a tagged sub-metric. With the rules provider a turn (two model calls, one tool call, one
 * conversation write) stays close to the file tools at these loads, so the target is the same (measured
 * figures: load/README.md); a real model provider takes seconds per turn and needs a target of its own.
 * @type {{ [metric: string]: string[] }}
 */
export const CONVERSE_THRESHOLDS = {
  'http_req_duration{tool:converse}': ['p(95)<200'],
};

/**
 * The thresholds of a run: with MIX=files there is no converse request to measure.
 * @param {string} mix
 * @returns {{ [metric: string]: string[] }}
 */
export function thresholdsFor(mix) {
  const all = mix === 'files' ? THRESHOLDS : { ...THRESHOLDS, ...CONVERSE_THRESHOLDS };
  return Object.fromEntries(Object.entries(all).map(([metric, rules]) => [metric, [...rules]]));
}

/**
 * Seconds in a k6-style duration: "90", "90s", "5m", "1h30m", "1.5h".
 * @param {string} text
 * @returns {number}
 */
export function parseDuration(text) {
  const trimmed = text.trim();
  if (trimmed.length === 0) throw new Error('empty duration');
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const units = { h: 3600, m: 60, s: 1 };
  let seconds = 0;
  let rest = trimmed;
  while (rest.length > 0) {
    const match = /^(\d+(?:\.\d+)?)(h|m|s)/.exec(rest);
    if (!match) throw new Error(`not a duration: ${JSON.stringify(text)} (use 90s, 5m, 1h30m)`);
    seconds += Number(match[1]) * units[/** @type {'h' | 'm' | 's'} */ (match[2])];
    rest = rest.slice(match[0].length);
  }
  return seconds;
}

/**
 * A scenario's stages in virtual users and seconds.
 * @param {string} name
 * @param {{ vus?: number, holdSeconds?: number, scale?: number }} [overrides]
 *   vus: the peak (default the shape's); holdSeconds: length of the steady stage; scale: multiplies
 *   every stage's length (after holdSeconds), e.g. 0.1 to run a soak in minutes
 * @returns {{ startVus: number, stages: { seconds: number, target: number }[], seconds: number }}
 */
export function stagesFor(name, overrides = {}) {
  const shape = SCENARIOS[name];
  if (!shape)
    throw new Error(`unknown scenario ${JSON.stringify(name)}: ${Object.keys(SCENARIOS).join(', ')}`);
  const peak = overrides.vus ?? shape.peakVus;
  const scale = overrides.scale ?? 1;
  const vus = (/** @type {number} */ fraction) => Math.max(fraction > 0 ? 1 : 0, Math.round(fraction * peak));
  const stages = shape.stages.map((stage) => ({
    seconds: Math.max(
      1,
      Math.round((stage.hold && overrides.holdSeconds ? overrides.holdSeconds : stage.seconds) * scale),
    ),
    target: vus(stage.target),
  }));
  return { startVus: vus(shape.start), stages, seconds: stages.reduce((sum, s) => sum + s.seconds, 0) };
}
