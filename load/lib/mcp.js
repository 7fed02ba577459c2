// @ts-check
// The k6 side of the mix: sends each step of lib/workload.js with k6/http and records its checks. Each
// virtual user runs this module in its own JavaScript runtime, so `state` below is per virtual user.
import { check, fail, sleep } from 'k6';
import http from 'k6/http';
import { config } from './config.js';
import { advance, evaluate, iterationSteps, newVuState, seedSteps } from './workload.js';

/** @typedef {import('./config.js').Config} Config */

const state = newVuState();

/**
 * @param {Config} settings
 * @returns {import('./workload.js').Settings}
 */
function workloadSettings(settings) {
  return { revision: settings.revision, mix: settings.mix, apiKey: settings.apiKey };
}

/**
 * POSTs one step to /mcp and checks the answer. The request and its checks carry the step's method, tool
 * and revision tags, so `http_req_duration{tool:converse}` and `checks{tool:converse}` can be read on their
 * own; the request's `name` tag is the step's label (every request goes to the same URL).
 * @param {Config} settings
 * @param {import('./workload.js').Step} step
 * @param {import('./workload.js').VuState} [vuState]
 */
function send(settings, step, vuState) {
  const response = http.post(settings.mcpUrl, step.request.body, {
    headers: step.request.headers,
    tags: { ...step.tags, name: step.label },
    timeout: '60s',
  });
  const body = typeof response.body === 'string' ? response.body : '';
  const evaluation = evaluate(step, response.status, body, vuState);
  check(evaluation, Object.fromEntries(evaluation.checks.map((c) => [c.name, () => c.ok])), step.tags);
  return evaluation;
}

/**
 * `setup()`: writes the files the mix reads under k6/ in the workspace (needs the files:write scope) and
 * stops the run if that fails.
 * @param {Config} [settings]
 */
export function seed(settings = config) {
  for (const step of seedSteps(workloadSettings(settings))) {
    const { problem } = send(settings, step);
    if (problem !== null) {
      fail(
        `seeding the workspace failed at ${step.label} (${problem}): setup() needs API_KEY with files:write`,
      );
    }
  }
}

/**
 * The default function: one iteration of the mix, then the think time.
 * @param {Config} [settings]
 */
export function iteration(settings = config) {
  for (const step of iterationSteps(state, workloadSettings(settings))) {
    advance(state, step, send(settings, step, state));
  }
  if (settings.thinkSeconds > 0) sleep(settings.thinkSeconds);
}
