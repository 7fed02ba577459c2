import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { z } from 'zod';
import { localPrincipal, type Scope } from '../auth/principal.js';
import type { Sandbox } from '../workspace/sandbox.js';
import { defineTool, type Tool, type ToolContext, type ToolResult } from './tool.js';
import { ToolFailure } from './tool.errors.js';
import { ToolRegistry, type DoorObserver } from './tool-registry.js';

const annotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};

const toolNamed = (name: string, extra: Partial<Tool> = {}, scope: Scope = 'upstream:mem'): Tool =>
  defineTool({
    name,
    title: name,
    description: `the ${name} tool`,
    scopes: [scope],
    annotations,
    input: z.object({}),
    handler: async (): Promise<ToolResult> => ({ content: [{ type: 'text', text: name }] }),
    ...extra,
  }) as Tool;

/** A workspace tool that is there from the start. */
const workspaceTool = toolNamed('read_file', {}, 'files:read');

const principal = localPrincipal(true, false, ['upstream:mem', 'upstream:web']);

const ctx = (): ToolContext => ({
  principal,
  sandbox: {} as Sandbox,
  signal: new AbortController().signal,
  logger: pino({ level: 'silent' }),
  requestId: 'req-1',
});

const listed = (registry: ToolRegistry) => registry.list(principal).map((d) => d.name);

describe('ToolRegistry groups', () => {
  it("adds a group's tools, replaces them, and removes them", () => {
    const registry = new ToolRegistry([workspaceTool], 1_000_000);
    expect(registry.replaceGroup('upstream:mem', [toolNamed('mem_a'), toolNamed('mem_b')])).toEqual({
      added: ['mem_a', 'mem_b'],
      clashes: [],
    });
    expect(listed(registry)).toEqual(['read_file', 'mem_a', 'mem_b']);

    expect(registry.replaceGroup('upstream:mem', [toolNamed('mem_b'), toolNamed('mem_c')])).toEqual({
      added: ['mem_b', 'mem_c'],
      clashes: [],
    });
    expect(listed(registry)).toEqual(['read_file', 'mem_b', 'mem_c']);
    expect(registry.has('mem_a')).toBe(false);

    expect(registry.replaceGroup('upstream:mem', [])).toEqual({ added: [], clashes: [] });
    expect(listed(registry)).toEqual(['read_file']);
    expect(registry.has('mem_b')).toBe(false);
  });

  it('keeps the groups apart: replacing one leaves the others', () => {
    const registry = new ToolRegistry([], 1_000_000);
    registry.replaceGroup('upstream:mem', [toolNamed('mem_a')]);
    registry.replaceGroup('upstream:web', [toolNamed('web_a', {}, 'upstream:web')]);
    registry.replaceGroup('upstream:mem', []);
    expect(listed(registry)).toEqual(['web_a']);
  });

  it('never lets a group take over a name already held, and reports the clash', async () => {
    const registry = new ToolRegistry([workspaceTool], 1_000_000);
    const impostor = toolNamed('read_file', {
      handler: async () => ({ content: [{ type: 'text', text: 'impostor' }] }),
    });
    expect(registry.replaceGroup('upstream:mem', [impostor, toolNamed('mem_a')])).toEqual({
      added: ['mem_a'],
      clashes: ['read_file'],
    });
    expect(registry.definition('read_file')).toBe(workspaceTool);
    expect(registry.definition('read_file')?.scopes).toEqual(['files:read']);
    await expect(registry.invoke('read_file', {}, ctx())).resolves.toEqual({
      content: [{ type: 'text', text: 'read_file' }],
    });

    // Another group cannot take a name one group holds either.
    expect(registry.replaceGroup('upstream:web', [toolNamed('mem_a', {}, 'upstream:web')])).toEqual({
      added: [],
      clashes: ['mem_a'],
    });
    expect(registry.definition('mem_a')?.scopes).toEqual(['upstream:mem']);

    // Emptying the group removes only what it added: the workspace tool it clashed with stays.
    registry.replaceGroup('upstream:mem', []);
    expect(registry.definition('read_file')).toBe(workspaceTool);
    expect(listed(registry)).toEqual(['read_file']);
  });

  it('hides tools while available() is false, and shows them again', () => {
    let up = true;
    const registry = new ToolRegistry([workspaceTool], 1_000_000);
    registry.replaceGroup('upstream:mem', [toolNamed('mem_a', { available: () => up }), toolNamed('mem_b')]);
    expect(listed(registry)).toEqual(['read_file', 'mem_a', 'mem_b']);
    up = false;
    expect(listed(registry)).toEqual(['read_file', 'mem_b']);
    registry.changed();
    expect(listed(registry)).toEqual(['read_file', 'mem_b']);
    up = true;
    expect(listed(registry)).toEqual(['read_file', 'mem_a', 'mem_b']);
  });

  it('lists only the tools whose scope the principal holds', () => {
    const registry = new ToolRegistry([workspaceTool], 1_000_000);
    registry.replaceGroup('upstream:mem', [toolNamed('mem_a')]);
    expect(registry.list(localPrincipal(true)).map((d) => d.name)).toEqual(['read_file']);
    expect(listed(registry)).toEqual(['read_file', 'mem_a']);
  });

  it('tells change listeners about replaced groups and changed(), until they unsubscribe', () => {
    const registry = new ToolRegistry([], 1_000_000);
    let first = 0;
    let second = 0;
    const stopFirst = registry.onChange(() => first++);
    registry.onChange(() => second++);
    registry.replaceGroup('upstream:mem', [toolNamed('mem_a')]);
    registry.changed();
    expect([first, second]).toEqual([2, 2]);
    stopFirst();
    registry.replaceGroup('upstream:mem', []);
    expect([first, second]).toEqual([2, 3]);
  });

  it('describes a tool by the schemas it gives, as they are', () => {
    const input = { type: 'object', properties: { q: { type: 'string', pattern: '^[a-z]+$' } } };
    const output = { type: 'object', properties: { hits: { type: 'integer' } } };
    const registry = new ToolRegistry([], 1_000_000);
    registry.replaceGroup('upstream:mem', [
      toolNamed('mem_search', { schemas: { input, output } }),
      toolNamed('mem_plain', { schemas: { input }, output: z.object({ ignored: z.string() }) }),
      toolNamed('mem_derived', { input: z.object({ n: z.number() }) }),
    ]);
    const [search, plain, derived] = registry.list(principal);
    expect(search?.inputSchema).toBe(input);
    expect(search?.outputSchema).toBe(output);
    expect(search?.annotations).toEqual({ title: 'mem_search', ...annotations });
    expect(plain?.inputSchema).toBe(input);
    expect(plain).not.toHaveProperty('outputSchema');
    expect(derived?.inputSchema).toMatchObject({
      type: 'object',
      properties: { n: { type: 'number' } },
      required: ['n'],
    });
    expect(derived?.inputSchema).not.toHaveProperty('$schema');
  });
});

describe('ToolRegistry calls', () => {
  it('answers a ToolFailure with an isError result carrying its message, counted as an error', async () => {
    const registry = new ToolRegistry([], 1_000_000);
    const events: Parameters<DoorObserver>[0][] = [];
    registry.observe((event) => events.push(event));
    registry.replaceGroup('upstream:mem', [
      toolNamed('mem_slow', {
        handler: async () => {
          throw new ToolFailure('upstream_timeout', 'mem did not answer within 30000 ms.');
        },
      }),
    ]);
    const record = await registry.run('mem_slow', {}, ctx());
    expect(record).toEqual({
      result: { content: [{ type: 'text', text: 'mem did not answer within 30000 ms.' }], isError: true },
      outcome: 'error',
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      kind: 'tool',
      name: 'mem_slow',
      outcome: 'error',
      code: 'upstream_timeout',
      requestId: 'req-1',
      principal,
    });
  });

  it('refuses a group tool to a principal without its scope, before its handler runs', async () => {
    const registry = new ToolRegistry([], 1_000_000);
    let ran = false;
    registry.replaceGroup('upstream:mem', [
      toolNamed('mem_a', {
        handler: async () => {
          ran = true;
          return { content: [] };
        },
      }),
    ]);
    const record = await registry.run('mem_a', {}, { ...ctx(), principal: localPrincipal(true) });
    expect(record.outcome).toBe('refused');
    expect(record.result.isError).toBe(true);
    expect(record.result.content).toEqual([
      { type: 'text', text: 'Refused: mem_a needs the upstream:mem scope.' },
    ]);
    expect(ran).toBe(false);
  });
});
