// @ts-check
// The request mix of one iteration, the files it needs, and how each answer is judged. Plain data and pure
// functions: the k6 scripts (lib/mcp.js) and `npm run bench` (bench/load.mjs) both drive this file, each
// with its own HTTP client, so they send the same requests and count the same checks.
import {
  LEGACY,
  MODERN,
  REVISIONS,
  initializeRequest,
  initializedNotification,
  readRpcResult,
  readToolResult,
  toolCallRequest,
} from './protocol.js';

/** Every file the mix touches lives under this directory of the workspace. */
export const SEED_DIR = 'k6';
export const BENCH_PATH = `${SEED_DIR}/bench.txt`;
export const NOTES_PATH = `${SEED_DIR}/notes.md`;
/** A conversation is continued this many turns in all, then the virtual user starts a new one. */
export const TURNS_PER_CONVERSATION = 5;

/**
 * 4 KiB of ASCII in 64-byte lines that each hold "fox" (`npm run bench` reads the same text), so a read,
 * a name search and a content search all have a known answer.
 * @param {number} [bytes]
 */
export function benchText(bytes = 4096) {
  /** @type {string[]} */
  const lines = [];
  for (let i = 0; lines.length * 64 < bytes; i++) {
    lines.push(
      `line ${String(i).padStart(4, '0')}: the quick brown fox jumps over the lazy dog.`.padEnd(63, '.'),
    );
  }
  return lines.join('\n').concat('\n').slice(0, bytes);
}

const NOTES = '# Load test files\n\nWritten by the load scripts (load/README.md). Safe to delete.\n';

/**
 * @typedef {import('./protocol.js').McpRequest} McpRequest
 * @typedef {'all' | 'files'} Mix
 * @typedef {{ revision: string, mix: Mix, apiKey?: string }} Settings
 *   revision: 'both' (alternate per iteration), '2025-06-18' or '2026-07-28'
 * @typedef {'initialize' | 'notification' | 'tool'} StepKind
 * @typedef {{
 *   label: string,
 *   kind: StepKind,
 *   revision: string,
 *   tags: { [name: string]: string },
 *   request: McpRequest,
 *   expect: string[],
 *   converse?: 'new' | 'continue',
 * }} Step
 * @typedef {{ name: string, ok: boolean }} Check
 * @typedef {{ checks: Check[], problem: string | null, structured: any }} Evaluation
 * @typedef {{
 *   iteration: number,
 *   nextId: number,
 *   initialized: boolean,
 *   legacyReady: boolean,
 *   conversationId: string | null,
 *   turns: number,
 * }} VuState
 */

/** @returns {VuState} */
export function newVuState() {
  return { iteration: 0, nextId: 1, initialized: false, legacyReady: false, conversationId: null, turns: 0 };
}

/**
 * @param {string} revision
 * @param {string} tool
 * @param {object} args
 * @param {string[]} expect
 * @param {VuState} state
 * @param {Settings} settings
 * @returns {Step}
 */
function toolStep(revision, tool, args, expect, state, settings) {
  return {
    label: `tools/call ${tool}`,
    kind: 'tool',
    revision,
    tags: { method: 'tools/call', tool, revision },
    request: toolCallRequest(revision, tool, args, { id: state.nextId++, apiKey: settings.apiKey }),
    expect,
  };
}

/**
 * The calls that create the files the mix reads (k6 `setup()`, and the bench before its load). They need
 * the files:write scope. 2026-07-28 needs no handshake, so these are single requests.
 * @param {Settings} settings
 * @returns {Step[]}
 */
export function seedSteps(settings) {
  const state = newVuState();
  return [
    toolStep(MODERN, 'create_directory', { path: SEED_DIR }, [SEED_DIR], state, settings),
    toolStep(MODERN, 'write_file', { path: BENCH_PATH, content: benchText() }, [BENCH_PATH], state, settings),
    toolStep(MODERN, 'write_file', { path: NOTES_PATH, content: NOTES }, [NOTES_PATH], state, settings),
  ];
}

/**
 * The requests of a virtual user's next iteration, in order: the 2025-06-18 handshake once per virtual
 * user, read_text_file, list_directory and search_files, then `converse` (unless the mix is 'files'):
 * a new conversation, continued on later iterations until it has TURNS_PER_CONVERSATION turns.
 * @param {VuState} state
 * @param {Settings} settings
 * @returns {Step[]}
 */
export function iterationSteps(state, settings) {
  const revision = settings.revision === 'both' ? REVISIONS[state.iteration % 2] : settings.revision;
  if (revision !== LEGACY && revision !== MODERN) throw new Error(`unknown MCP revision ${revision}`);
  state.iteration++;
  /** @type {Step[]} */
  const steps = [];
  if (revision === LEGACY && !state.legacyReady) {
    const tags = { method: 'initialize', revision };
    steps.push(
      {
        label: 'initialize',
        kind: 'initialize',
        revision,
        tags,
        request: initializeRequest(state.nextId++, settings.apiKey),
        expect: [],
      },
      {
        label: 'notifications/initialized',
        kind: 'notification',
        revision,
        tags: { ...tags, method: 'notifications/initialized' },
        request: initializedNotification(settings.apiKey),
        expect: [],
      },
    );
  }
  steps.push(
    toolStep(revision, 'read_text_file', { path: BENCH_PATH }, [benchText()], state, settings),
    toolStep(
      revision,
      'list_directory',
      { path: SEED_DIR },
      ['[FILE] bench.txt', '[FILE] notes.md'],
      state,
      settings,
    ),
    toolStep(
      revision,
      'search_files',
      { path: SEED_DIR, pattern: '**/*.txt' },
      [BENCH_PATH],
      state,
      settings,
    ),
  );
  if (settings.mix === 'files') return steps;
  if (state.conversationId === null) {
    const step = toolStep(
      revision,
      'converse',
      { prompt: `read ${BENCH_PATH}` },
      [benchText()],
      state,
      settings,
    );
    steps.push({ ...step, converse: 'new' });
  } else {
    // Alternate a content search and a listing, so a continued conversation is not one cached answer.
    const [prompt, expect] =
      state.turns % 2 === 1
        ? [`search for fox in ${SEED_DIR}`, `${BENCH_PATH}:1: line 0000`]
        : [`list files in ${SEED_DIR}`, '[FILE] notes.md'];
    const args = { prompt, conversation_id: state.conversationId };
    steps.push({ ...toolStep(revision, 'converse', args, [expect], state, settings), converse: 'continue' });
  }
  return steps;
}

/**
 * Judges one answer. Tool calls: HTTP 200, a JSON-RPC result (no error), `isError` false, and the
 * expected text in the result (for `converse`, in the answer, in the same conversation when continuing).
 * @param {Step} step
 * @param {number} status 0 when no response arrived
 * @param {string} body
 * @param {VuState} [state] for a continued conversation: the conversation it must stay in
 * @returns {Evaluation}
 */
export function evaluate(step, status, body, state) {
  const name = (/** @type {string} */ what) => `${step.label}: ${what}`;
  if (step.kind === 'notification') {
    const ok = status === 202;
    return {
      checks: [{ name: name('HTTP 202'), ok }],
      problem: ok ? null : `HTTP ${status}`,
      structured: null,
    };
  }
  const httpOk = status === 200;
  if (step.kind === 'initialize') {
    const { problem, result } = httpOk ? readRpcResult(body) : { problem: `HTTP ${status}`, result: null };
    const version = result?.protocolVersion ?? null;
    const versionOk = version === step.revision;
    return {
      checks: [
        { name: name('HTTP 200'), ok: httpOk },
        { name: name('JSON-RPC result'), ok: httpOk && problem === null },
        { name: name(`protocolVersion ${step.revision}`), ok: versionOk },
      ],
      problem: problem ?? (versionOk ? null : `protocolVersion ${version}`),
      structured: null,
    };
  }
  const read = httpOk ? readToolResult(body) : null;
  const rpcOk = read !== null && !read.rpcError;
  const toolOk = rpcOk && !read.toolError;
  let textOk = false;
  if (toolOk) {
    const haystack = step.converse ? String(read.structured?.answer ?? '') : read.text;
    textOk = step.expect.every((text) => haystack.includes(text));
    if (step.converse === 'continue') {
      textOk = textOk && read.structured?.conversation_id === state?.conversationId;
    }
  }
  return {
    checks: [
      { name: name('HTTP 200'), ok: httpOk },
      { name: name('JSON-RPC result without error'), ok: rpcOk },
      { name: name('isError is false'), ok: toolOk },
      { name: name('holds the expected text'), ok: textOk },
    ],
    problem: !httpOk
      ? `HTTP ${status}`
      : (read?.problem ?? (textOk ? null : 'the result does not hold the expected text')),
    structured: read?.structured ?? null,
  };
}

/**
 * Moves a virtual user's state on after an answer: the handshake is done once initialize succeeded and
 * the notification was accepted; a new conversation is kept to continue; a conversation that failed or reached its turns is
 * dropped, so the next iteration starts a new one.
 * @param {VuState} state
 * @param {Step} step
 * @param {Evaluation} evaluation
 */
export function advance(state, step, evaluation) {
  const ok = evaluation.problem === null;
  if (step.kind === 'initialize') state.initialized = ok;
  if (step.kind === 'notification') state.legacyReady = ok && state.initialized;
  if (!step.converse) return;
  if (ok && step.converse === 'new') {
    state.conversationId = evaluation.structured.conversation_id;
    state.turns = 1;
  } else if (ok) {
    state.turns++;
  }
  if (!ok || state.turns >= TURNS_PER_CONVERSATION) {
    state.conversationId = null;
    state.turns = 0;
  }
}
