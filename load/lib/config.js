// @ts-check
/* global __ENV */
// Settings from the environment (`k6 run -e NAME=value`, or the shell's variables), checked once in the
// init context so a typo fails the run before any request, and the k6 options built from them.
import { LEGACY, MODERN } from './protocol.js';
import { DEFAULT_THINK_SECONDS, parseDuration, stagesFor, thresholdsFor } from './scenarios.js';

/**
 * @typedef {{
 *   baseUrl: string,
 *   mcpUrl: string,
 *   apiKey: string | undefined,
 *   vus: number | undefined,
 *   holdSeconds: number | undefined,
 *   thinkSeconds: number,
 *   revision: string,
 *   mix: import('./workload.js').Mix,
 * }} Config
 */

/**
 * Reads BASE_URL, API_KEY, VUS, DURATION, THINK_TIME, REVISION and MIX (see load/README.md). Throws naming
 * the variable, without echoing its value.
 * @param {{ [name: string]: string | undefined }} env
 * @returns {Config}
 */
export function loadConfig(env) {
  const baseUrl = (env.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(baseUrl))
    throw new Error('BASE_URL must be an http(s) URL like http://127.0.0.1:3000');
  const vus = env.VUS ? Number(env.VUS) : undefined;
  if (vus !== undefined && !(Number.isInteger(vus) && vus > 0))
    throw new Error('VUS must be a positive integer');
  const holdSeconds = env.DURATION ? durationOrNaN(env.DURATION) : undefined;
  if (holdSeconds !== undefined && !(holdSeconds > 0)) {
    throw new Error('DURATION must be a duration above 0 such as 90s, 5m or 1h30m');
  }
  const thinkSeconds = env.THINK_TIME ? Number(env.THINK_TIME) : DEFAULT_THINK_SECONDS;
  if (!(thinkSeconds >= 0)) throw new Error('THINK_TIME must be a number of seconds, 0 or more');
  const revision = env.REVISION || 'both';
  if (![LEGACY, MODERN, 'both'].includes(revision)) {
    throw new Error(`REVISION must be ${LEGACY}, ${MODERN} or both`);
  }
  const mix = env.MIX || 'all';
  if (mix !== 'all' && mix !== 'files') throw new Error('MIX must be all or files');
  return {
    baseUrl,
    mcpUrl: `${baseUrl}/mcp`,
    apiKey: env.API_KEY || undefined,
    vus,
    holdSeconds,
    thinkSeconds,
    revision,
    mix,
  };
}

/** @param {string} text */
function durationOrNaN(text) {
  try {
    return parseDuration(text);
  } catch {
    return NaN;
  }
}

/** This run's settings (k6 defines `__ENV`; elsewhere, such as a test importing this file, it is empty). */
export const config = loadConfig(typeof __ENV === 'object' ? __ENV : {});

/**
 * The k6 options of a scenario: one ramping-vus scenario with the shape's stages (VUS and DURATION
 * applied) and the thresholds of lib/scenarios.js for the mix.
 * @param {string} name a key of SCENARIOS
 * @param {Config} [settings]
 * @returns {import('k6/options').Options}
 */
export function buildOptions(name, settings = config) {
  const { startVus, stages } = stagesFor(name, { vus: settings.vus, holdSeconds: settings.holdSeconds });
  return {
    scenarios: {
      [name]: {
        executor: 'ramping-vus',
        startVUs: startVus,
        stages: stages.map((stage) => ({ duration: `${stage.seconds}s`, target: stage.target })),
        gracefulRampDown: '30s',
      },
    },
    thresholds: thresholdsFor(settings.mix),
    summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  };
}
