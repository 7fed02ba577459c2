import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { z } from 'zod';
import { localPrincipal } from '../auth/principal.js';
import { configSchema } from '../config/config.schema.js';
import { defineTool, type Tool } from '../tools/tool.js';
import { ToolRegistry } from '../tools/tool-registry.js';
import { ToolRefusal } from '../tools/tool.errors.js';
import { Sandbox } from '../workspace/sandbox.js';
import type { ModelProvider, ModelReply, ModelRequest } from './model-provider.js';
import type { ModelRouter } from './model-router.js';
import { SecureAgent } from './secure-agent.js';
import { Supervisor } from './supervisor.js';

const limits = configSchema.parse({}).agent.limits;
const usage = { inputTokens: 1, outputTokens: 1 };

/** A provider that proposes the given calls once, then answers with what it was sent back. */
function scripted(calls: Array<{ name: string; arguments: unknown }>): ModelProvider {
  return {
    name: 'scripted',
    async complete(request: ModelRequest): Promise<ModelReply> {
      const last = request.messages.at(-1);
      if (last?.role === 'tool') return { text: 'done', calls: [], usage, stop: 'end' };
      return { text: '', calls: calls.map((c, i) => ({ id: `c${i}`, ...c })), usage, stop: 'tool_use' };
    },
  };
}

const probe = (name: string, handler: Tool['handler']): Tool =>
  defineTool({
    name,
    title: name,
    description: name,
    scopes: ['files:read'],
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    input: z.object({}),
    handler,
  }) as Tool;

const turnInput = () => ({
  principal: localPrincipal(false),
  sandbox,
  conversationId: 'c',
  prompt: 'go',
  history: [],
  readOnly: false,
  signal: new AbortController().signal,
  logger: pino({ level: 'silent' }),
  requestId: 'r',
});

let root: string;
let sandbox: Sandbox;
beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'bastion-agent-unit-'));
  sandbox = await Sandbox.create({
    root,
    readOnly: false,
    denyPatterns: [],
    limits: configSchema.parse({}).workspace.limits,
  });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('SecureAgent steps', () => {
  it('tells a tool that refused from one that failed', async () => {
    const registry = new ToolRegistry(
      [
        probe('works', async () => ({ content: [{ type: 'text', text: 'fine' }] })),
        probe('refuses', async () => {
          throw new ToolRefusal('nope', 'Refused: not today.');
        }),
        probe('breaks', async () => {
          throw new Error('disk on fire');
        }),
      ],
      1_000_000,
    );
    const provider = scripted([
      { name: 'works', arguments: {} },
      { name: 'refuses', arguments: {} },
      { name: 'breaks', arguments: {} },
    ]);
    const router = {
      select: () => ({ provider, name: 'rules', model: 'scripted' }),
    } as unknown as ModelRouter;
    const agent = new SecureAgent(registry, new Supervisor(registry, limits), router, limits, 1_000);
    const output = await agent.runTurn(turnInput());
    expect(output.steps.map((s) => `${s.tool}:${s.outcome}`)).toEqual([
      'works:ok',
      'refuses:refused',
      'breaks:error',
    ]);
    // An internal failure is summarized with Bastion's own message, never the error's.
    expect(output.steps[2]?.summary).not.toContain('disk on fire');
  });

  it('says so when the model’s output limit cut its answer short', async () => {
    const registry = new ToolRegistry([], 1_000);
    const provider: ModelProvider = {
      name: 'scripted',
      complete: async () => ({ text: 'The files are', calls: [], usage, stop: 'max_tokens' }),
    };
    const router = {
      select: () => ({ provider, name: 'rules', model: 'scripted' }),
    } as unknown as ModelRouter;
    const agent = new SecureAgent(registry, new Supervisor(registry, limits), router, limits, 1_000);
    const output = await agent.runTurn(turnInput());
    expect(output.answer).toMatch(/^The files are\n\n\[The answer was cut at the model's output limit/);
  });
});
