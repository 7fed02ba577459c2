/**
 * The real SecureAgent as the runtime assembles it (registry, sandbox, SQLite store, Supervisor, audit,
 * metrics), on a fresh workspace, its provider pointed at a fake model server.
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { AgentParts } from '../../src/agent/agent.assembly.js';
import type { ConverseAnswer } from '../../src/agent/agent.service.js';
import { localPrincipal, type Principal } from '../../src/auth/principal.js';
import { configSchema } from '../../src/config/config.schema.js';
import type { StepRecord } from '../../src/conversations/conversation.js';
import type { AuditRecord } from '../../src/observability/audit-record.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { auditFilePath } from '../../src/observability/audit-log.js';
import type { FakeModelServer } from './fake-model-server.js';

export const NOTES = 'Buy milk. Call the plumber on Tuesday.\n';
const DEFAULT_FILES = { 'notes.txt': NOTES, 'src/app.ts': 'export const app = 1;\n' };

export interface TurnOptions {
  conversationId?: string;
  principal?: Principal;
  signal?: AbortSignal;
  onStep?: (step: StepRecord, index: number) => void;
}

export interface AgentHarness {
  runtime: Runtime;
  agent: AgentParts;
  root: string;
  converse(prompt: string, options?: TurnOptions): Promise<ConverseAnswer>;
  /** Flushes the audit log and reads it whole. */
  audit(): Promise<{ text: string; records: AuditRecord[] }>;
  close(): Promise<void>;
}

export interface AgentSettings {
  limits?: Record<string, number>;
  resilience?: Record<string, number>;
  /** Workspace files by relative path; default notes.txt and src/app.ts. */
  files?: Record<string, string>;
}

/** A runtime on a fresh workspace and data directory, its agent on the fake model server. */
export async function startAgent(fake: FakeModelServer, settings: AgentSettings = {}): Promise<AgentHarness> {
  const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-agent-')));
  const root = path.join(base, 'ws');
  mkdirSync(path.join(root, 'src'), { recursive: true });
  for (const [file, text] of Object.entries(settings.files ?? DEFAULT_FILES)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  const config = configSchema.parse({
    workspace: { root },
    dataDir: path.join(base, 'data'),
    log: { level: 'silent' },
    agent: {
      provider: fake.format,
      // A model of our own: the SDK warns on every request naming a deprecated one.
      [fake.format]: { apiKey: 'sk-test', baseUrl: fake.baseUrl, model: `${fake.format}-test-model` },
      resilience: { timeoutMs: 5_000, retries: 0, retryBaseMs: 10, ...settings.resilience },
      limits: settings.limits ?? {},
    },
  });
  const runtime = await createRuntime(config, { logger: pino({ level: 'silent' }) });
  const agent = runtime.agent;
  if (!agent) throw new Error('the agent is not enabled');
  let requests = 0;
  return {
    runtime,
    agent,
    root,
    converse: (prompt, { conversationId, principal = localPrincipal(false), signal, onStep } = {}) =>
      agent.service.converse(
        {
          principal,
          sandbox: runtime.sandbox,
          signal: signal ?? new AbortController().signal,
          logger: runtime.logger,
          requestId: `req-${++requests}`,
          ...(onStep && { onStep }),
        },
        { prompt, ...(conversationId && { conversationId }) },
      ),
    async audit() {
      await runtime.audit.flush();
      const text = readFileSync(auditFilePath(config), 'utf8');
      const records = text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as AuditRecord);
      return { text, records };
    },
    async close() {
      await runtime.close();
      rmSync(base, { recursive: true, force: true });
    },
  };
}
