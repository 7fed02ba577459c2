// The reference servers `npm run bench` measures Bastion against, in the same run and pinned like it: the
// official SDK v1 Streamable HTTP server (reference-sdk-v1.mjs) and a raw node:http server answering
// Bastion's own bytes (reference-raw.mjs).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO, freePort, post, startProcess } from './harness.mjs';
import {
  LEGACY,
  legacyInitialize,
  legacyInitialized,
  legacyRequest,
  legacyToolCall,
} from './mcp-requests.mjs';

/** Starts the SDK v1 reference serving the bench workspace. */
export async function startSdkV1(pin, workspace) {
  const port = await freePort();
  const args = [process.execPath, path.join(REPO, 'bench', 'reference-sdk-v1.mjs'), String(port), workspace];
  return startProcess({ pin, args, label: 'SDK v1 reference' });
}

/**
 * Starts the raw reference answering each revision with `answers[revision]` ({ contentType, body }): what
 * Bastion answered the bench's tools/call with.
 */
export async function startRaw(pin, dataDir, answers) {
  const port = await freePort();
  const file = path.join(dataDir, 'raw-answers.json');
  writeFileSync(file, JSON.stringify(answers));
  const args = [process.execPath, path.join(REPO, 'bench', 'reference-raw.mjs'), String(port), file];
  return startProcess({ pin, args, label: 'raw reference' });
}

/** Adds the session id to a prepared request, as a client of a stateful server sends it. */
const inSession = (request, session) => ({
  ...request,
  headers: { ...request.headers, 'mcp-session-id': session },
});

/**
 * Opens one session on the SDK v1 reference (initialize, then notifications/initialized) and returns the
 * tools/call request of that session: every load connection sends it.
 */
export async function sdkV1ToolCall(url) {
  const init = await post(url, legacyInitialize(1));
  if (init.status !== 200 || !init.session) {
    throw new Error(`the SDK v1 reference did not open a session (HTTP ${init.status}): ${init.body}`);
  }
  const initialized = await post(url, inSession(legacyInitialized(), init.session));
  if (initialized.status !== 202) throw new Error(`initialized: HTTP ${initialized.status}`);
  return inSession(legacyToolCall(2), init.session);
}

/**
 * The SDK v1 reference's connect cycle: initialize, tools/call in the session it opened, then DELETE to
 * close it (load.mjs carries the session id from step to step).
 */
export function sdkV1CycleSteps(expectText) {
  const { headers } = legacyRequest('tools/call', {});
  return [
    { ...legacyInitialize(1), expect: 'result' },
    { ...legacyToolCall(2), expect: 'result', expectText },
    { method: 'DELETE', headers: { 'mcp-protocol-version': LEGACY, accept: headers.accept }, expect: 'ok' },
  ];
}
