import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { z } from 'zod';
import type { Principal, Scope } from '../auth/principal.js';
import type { Sandbox } from '../workspace/sandbox.js';
import { SandboxRefusal } from '../workspace/sandbox.errors.js';
import { defineOperation, type Operation, type Prompt } from './operation.js';
import { defineTool, type Tool, type ToolContext } from './tool.js';
import { InvalidToolCall, OperationRefused } from './tool.errors.js';
import { ToolRegistry, type DoorEvent } from './tool-registry.js';

const principal = (...scopes: Scope[]): Principal => ({
  id: `p-${scopes.join('+') || 'none'}`,
  kind: 'api-key',
  scopes: new Set(scopes),
  tier: 'default',
});

const ctx = (who: Principal): ToolContext => ({
  principal: who,
  sandbox: { relative: (p: string) => p } as unknown as Sandbox,
  signal: new AbortController().signal,
  logger: pino({ level: 'silent' }),
  requestId: 'req-1',
});

const editTool = defineTool({
  name: 'edit',
  title: 'edit',
  description: 'edits',
  scopes: ['files:read', 'files:write'],
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  input: z.object({ path: z.string() }),
  handler: async ({ path }) => ({ content: [{ type: 'text', text: `edited ${path}` }] }),
}) as Tool;

const readOp = defineOperation({
  name: 'resources/read',
  scopes: ['files:read'],
  input: z.object({ uri: z.string() }),
  target: ({ uri }) => uri.replace('workspace:///', ''),
  handler: async ({ uri }) => {
    if (uri.endsWith('missing')) throw new SandboxRefusal('not_found', `${uri} does not exist.`);
    return { contents: [{ uri, text: 'x' }] };
  },
}) as Operation;

const listOp = defineOperation({
  name: 'resources/list',
  scopes: ['files:read'],
  input: z.object({}),
  forbidden: () => ({ resources: [] }),
  handler: async () => ({ resources: [{ uri: 'workspace:///a' }] }),
}) as Operation;

const reviewPrompt: Prompt = {
  name: 'review',
  title: 'Review',
  description: 'review a file',
  arguments: [{ name: 'path', description: 'file', required: true }],
  scopes: ['files:read'],
  handler: async (args) => [{ role: 'user', content: { type: 'text', text: `review ${args.path}` } }],
};

function door(): { registry: ToolRegistry; events: DoorEvent[] } {
  const registry = new ToolRegistry([editTool], 1_000_000, undefined, {
    prompts: [reviewPrompt],
    operations: [readOp, listOp],
  });
  const events: DoorEvent[] = [];
  registry.observe((event) => events.push(event));
  return { registry, events };
}

describe('the door records every call exactly once, refused calls included', () => {
  it('records an unknown tool before refusing it as a protocol error', async () => {
    const { registry, events } = door();
    await expect(registry.run('no_such_tool', {}, ctx(principal('files:read')))).rejects.toBeInstanceOf(
      InvalidToolCall,
    );
    expect(events).toEqual([
      expect.objectContaining({
        kind: 'tool',
        name: 'no_such_tool',
        outcome: 'refused',
        code: 'unknown_tool',
      }),
    ]);
  });

  it('records invalid arguments, with the path the call named, before refusing them', async () => {
    const { registry, events } = door();
    const all = principal('files:read', 'files:write');
    await expect(registry.run('edit', { path: 7 }, ctx(all))).rejects.toThrow(/Invalid arguments for edit/);
    await expect(registry.run('edit', { path: 'a.txt', extra: [] }, ctx(all))).resolves.toMatchObject({
      outcome: 'ok',
    });
    expect(events.map((e) => [e.outcome, e.code])).toEqual([
      ['refused', 'invalid_arguments'],
      ['ok', undefined],
    ]);
  });

  it('needs every scope a tool declares: files:write alone cannot edit (an edit shows the file)', async () => {
    const { registry, events } = door();
    const record = await registry.run('edit', { path: 'a.txt' }, ctx(principal('files:write')));
    expect(record.outcome).toBe('refused');
    expect(record.result).toEqual({
      content: [{ type: 'text', text: 'Refused: edit needs the files:read scope.' }],
      isError: true,
    });
    expect(events).toEqual([
      expect.objectContaining({ name: 'edit', outcome: 'refused', code: 'forbidden', target: 'a.txt' }),
    ]);
  });

  it('keeps the outcome when an observer throws, and still tells the others, once each', async () => {
    const { registry, events } = door();
    registry.observe(() => {
      throw new Error('disk full');
    });
    const later: DoorEvent[] = [];
    registry.observe((event) => later.push(event));
    const record = await registry.run('edit', { path: 'a.txt' }, ctx(principal('files:read', 'files:write')));
    expect(record).toEqual({ result: { content: [{ type: 'text', text: 'edited a.txt' }] }, outcome: 'ok' });
    expect(events).toHaveLength(1);
    expect(later).toHaveLength(1);
  });

  it('refuses an operation out of scope with a typed error, and records it', async () => {
    const { registry, events } = door();
    const refused = registry.perform(
      'resources/read',
      { uri: 'workspace:///a.txt' },
      ctx(principal('agent')),
    );
    await expect(refused).rejects.toBeInstanceOf(OperationRefused);
    await expect(refused).rejects.toMatchObject({ code: 'forbidden', protocol: false });
    expect(events).toEqual([
      expect.objectContaining({
        kind: 'operation',
        name: 'resources/read',
        code: 'forbidden',
        target: 'a.txt',
      }),
    ]);
  });

  it('answers a filtered list to a principal without the scope, and records the refusal', async () => {
    const { registry, events } = door();
    await expect(registry.perform('resources/list', {}, ctx(principal('agent')))).resolves.toEqual({
      resources: [],
    });
    await expect(registry.perform('resources/list', {}, ctx(principal('files:read')))).resolves.toEqual({
      resources: [{ uri: 'workspace:///a' }],
    });
    expect(events.map((e) => [e.outcome, e.code])).toEqual([
      ['refused', 'forbidden'],
      ['ok', undefined],
    ]);
  });

  it("passes a sandbox refusal on with the sandbox's code", async () => {
    const { registry, events } = door();
    await expect(
      registry.perform('resources/read', { uri: 'workspace:///missing' }, ctx(principal('files:read'))),
    ).rejects.toMatchObject({ code: 'not_found' });
    expect(events[0]).toMatchObject({ outcome: 'refused', code: 'not_found', target: 'missing' });
  });

  it('lists prompts and templates by scope, and renders a prompt through the door', async () => {
    const { registry, events } = door();
    expect(registry.listPrompts(principal('agent'))).toEqual([]);
    expect(registry.listPrompts(principal('files:read')).map((p) => p.name)).toEqual(['review']);
    await expect(
      registry.getPrompt('review', { path: 'a.txt' }, ctx(principal('files:write'))),
    ).rejects.toMatchObject({
      code: 'forbidden',
    });
    await expect(registry.getPrompt('review', {}, ctx(principal('files:read')))).rejects.toMatchObject({
      code: 'invalid_arguments',
      protocol: true,
    });
    await expect(registry.getPrompt('nope', {}, ctx(principal('files:read')))).rejects.toMatchObject({
      code: 'unknown_prompt',
    });
    await expect(
      registry.getPrompt('review', { path: 'a.txt' }, ctx(principal('files:read'))),
    ).resolves.toEqual({
      description: 'review a file',
      messages: [{ role: 'user', content: { type: 'text', text: 'review a.txt' } }],
    });
    expect(events.map((e) => `${e.kind} ${e.name} ${e.outcome} ${e.code ?? ''}`.trim())).toEqual([
      'prompt review refused forbidden',
      'prompt review refused invalid_arguments',
      'prompt nope refused unknown_prompt',
      'prompt review ok',
    ]);
  });

  it('records calls a limit refused at the edge, one record each', () => {
    const { registry, events } = door();
    registry.refuseAll(
      [
        { kind: 'tool', name: 'edit', args: { path: 'a.txt' } },
        { kind: 'operation', name: 'resources/read', args: { uri: 'workspace:///b' } },
      ],
      ctx(principal('files:read')),
      'rate_limited',
    );
    expect(events.map((e) => [e.name, e.outcome, e.code, e.target])).toEqual([
      ['edit', 'refused', 'rate_limited', 'a.txt'],
      ['resources/read', 'refused', 'rate_limited', 'b'],
    ]);
  });

  it('names the scope an OAuth client would be challenged for, but not for filtered lists', () => {
    const { registry } = door();
    const agent = principal('agent');
    expect(registry.refusingScope(agent, { kind: 'tool', name: 'edit' })).toBe('files:read');
    expect(registry.refusingScope(agent, { kind: 'operation', name: 'resources/read' })).toBe('files:read');
    expect(registry.refusingScope(agent, { kind: 'operation', name: 'resources/list' })).toBeUndefined();
    expect(registry.refusingScope(agent, { kind: 'prompt', name: 'review' })).toBe('files:read');
    expect(registry.refusingScope(agent, { kind: 'tool', name: 'unknown' })).toBeUndefined();
  });
});
