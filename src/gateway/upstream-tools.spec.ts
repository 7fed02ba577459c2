import type { CallToolResult, Tool as McpTool } from '@modelcontextprotocol/client';
import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { localPrincipal } from '../auth/principal.js';
import { upstreamsSchema, type UpstreamConfig } from '../config/upstreams.schema.js';
import type { ToolAnnotations, ToolContext, ToolResult } from '../tools/tool.js';
import { InvalidToolCall } from '../tools/tool.errors.js';
import { ToolRegistry } from '../tools/tool-registry.js';
import type { Sandbox } from '../workspace/sandbox.js';
import { inputValidator, MAX_UPSTREAM_TOOLS, toolResultOf, upstreamTools } from './upstream-tools.js';

/** One upstream's config, parsed by the real schema. */
const configOf = (entry: Record<string, unknown> = {}, name = 'mem'): UpstreamConfig => {
  const [config] = upstreamsSchema.parse({ [name]: { command: 'node', ...entry } });
  return config as UpstreamConfig;
};

const listed = (name: string, extra: Partial<McpTool> = {}): McpTool => ({
  name,
  inputSchema: { type: 'object' },
  ...extra,
});

const OK: ToolResult = { content: [{ type: 'text', text: 'ok' }] };

interface Call {
  name: string;
  args: unknown;
  ctx: ToolContext;
  hints: ToolAnnotations;
}

/** A `call` that records what it was handed. */
function recorder() {
  const calls: Call[] = [];
  const call = async (name: string, args: unknown, ctx: ToolContext, hints: ToolAnnotations) => {
    calls.push({ name, args, ctx, hints });
    return OK;
  };
  return { calls, call };
}

const always = () => true;
const never = async (): Promise<ToolResult> => {
  throw new Error('not called');
};

const names = (config: UpstreamConfig, tools: McpTool[]) =>
  upstreamTools(config, tools, never, always).tools.map((t) => t.name);

describe('upstreamTools', () => {
  it('prefixes the names with the upstream prefix, or the one configured', () => {
    expect(names(configOf(), [listed('read_graph'), listed('search-nodes')])).toEqual([
      'mem_read_graph',
      'mem_search-nodes',
    ]);
    expect(names(configOf({ prefix: 'kg__' }), [listed('read_graph')])).toEqual(['kg__read_graph']);
    expect(names(configOf({ prefix: '' }), [listed('read_graph')])).toEqual(['read_graph']);
  });

  it('offers only the allowed tools and never the denied ones, by their upstream names', () => {
    const tools = ['read_graph', 'search_nodes', 'delete_entities', 'create_entities'].map((n) => listed(n));
    const allowDeny = configOf({
      tools: { allow: ['read_graph', 'search_nodes', 'delete_entities'], deny: ['delete_entities'] },
    });
    const { tools: offered, skipped } = upstreamTools(allowDeny, tools, never, always);
    expect(offered.map((t) => t.name)).toEqual(['mem_read_graph', 'mem_search_nodes']);
    expect(skipped).toEqual([]);
    // The lists name the upstream's tools, not the prefixed names.
    expect(names(configOf({ tools: { deny: ['mem_read_graph'] } }), tools)).toContain('mem_read_graph');
    expect(names(configOf({ tools: { deny: ['read_graph'] } }), tools)).not.toContain('mem_read_graph');
  });

  it('skips a tool whose name, with the prefix, is not 1-64 letters, digits, _ or -', () => {
    const fits = 'a'.repeat(60);
    const { tools, skipped } = upstreamTools(
      configOf(),
      [listed(fits), listed(`${fits}b`), listed('has space'), listed('dotted.name'), listed('naïve')],
      never,
      always,
    );
    expect(tools.map((t) => t.name)).toEqual([`mem_${fits}`]);
    expect(skipped.map((s) => s.name)).toEqual([`${fits}b`, 'has space', 'dotted.name', 'naïve']);
    for (const s of skipped) expect(s.reason).toMatch(/not 1-64 letters, digits, _ or -/);
  });

  it(`offers at most ${MAX_UPSTREAM_TOOLS} tools and names the rest as skipped`, () => {
    const many = Array.from({ length: MAX_UPSTREAM_TOOLS + 10 }, (_, i) => listed(`t${i}`));
    const { tools, skipped } = upstreamTools(configOf({ tools: { deny: ['t0'] } }), many, never, always);
    expect(tools).toHaveLength(MAX_UPSTREAM_TOOLS);
    expect(tools[0]?.name).toBe('mem_t1');
    expect(skipped.map((s) => s.name)).toEqual(
      Array.from({ length: 9 }, (_, i) => `t${MAX_UPSTREAM_TOOLS + 1 + i}`),
    );
    expect(skipped[0]?.reason).toBe(`more than ${MAX_UPSTREAM_TOOLS} tools`);
  });

  it('skips a tool whose input and output schemas together are over 64 KiB', () => {
    const sized = (chars: number) => ({ type: 'object' as const, description: 'x'.repeat(chars) });
    const { tools, skipped } = upstreamTools(
      configOf(),
      [
        listed('small', { inputSchema: sized(60_000) }),
        listed('big_input', { inputSchema: sized(70_000) }),
        listed('big_output', { inputSchema: sized(40_000), outputSchema: sized(40_000) }),
      ],
      never,
      always,
    );
    expect(tools.map((t) => t.name)).toEqual(['mem_small']);
    expect(skipped).toEqual([
      { name: 'big_input', reason: 'its schemas are over 65536 bytes' },
      { name: 'big_output', reason: 'its schemas are over 65536 bytes' },
    ]);
  });

  it('cuts descriptions to 2048 characters and titles to 200', () => {
    const [tool] = upstreamTools(
      configOf(),
      [listed('long', { description: 'd'.repeat(5_000), title: 't'.repeat(500) })],
      never,
      always,
    ).tools;
    expect(tool?.description).toBe('d'.repeat(2_048));
    expect(tool?.title).toBe('t'.repeat(200));
  });

  it('strips escapes, controls and bidirectional overrides from titles and descriptions, keeping newlines and tabs', () => {
    const [titled, annotated] = upstreamTools(
      configOf(),
      [
        listed('a', {
          title: 'Re\u001b[31mad\u202e',
          description: 'Reads.\n\tArgs: path.\u001b]0;owned\u0007\r\nEnd\u001b[8m hidden\u0000',
        }),
        listed('b', { annotations: { title: 'Line\nbreak\u009b2J' } }),
      ],
      never,
      always,
    ).tools;
    expect(titled?.title).toBe('Read');
    expect(titled?.description).toBe('Reads.\n\tArgs: path.\nEnd hidden');
    expect(annotated?.title).toBe('Line break');
  });

  it("strips escapes from the titles and descriptions in a tool's schemas, and leaves names and data alone", () => {
    const inputSchema = {
      type: 'object' as const,
      description: 'Top\u001b[2J',
      properties: {
        'odd\u001bname': { type: 'string', title: 'T\u0007', description: 'Line 1\nLine 2\u202e' },
        description: { type: 'string', enum: ['a\u001b[1m'], default: 'b\u0007', examples: ['c\u0085'] },
      },
      $defs: { item: { title: 'Item\u009b31m', const: 'x\u001b[0m' } },
    };
    const outputSchema = {
      type: 'object' as const,
      properties: { hits: { description: 'Hits\u001b]8;;x\u001b\\' } },
    };
    const [tool] = upstreamTools(
      configOf(),
      [listed('s', { inputSchema, outputSchema })],
      never,
      always,
    ).tools;
    expect(tool?.schemas?.input).toEqual({
      type: 'object',
      description: 'Top',
      properties: {
        'odd\u001bname': { type: 'string', title: 'T', description: 'Line 1\nLine 2' },
        description: { type: 'string', enum: ['a\u001b[1m'], default: 'b\u0007', examples: ['c\u0085'] },
      },
      $defs: { item: { title: 'Item', const: 'x\u001b[0m' } },
    });
    expect(tool?.schemas?.output).toEqual({ type: 'object', properties: { hits: { description: 'Hits' } } });
  });

  it('names a skipped tool without the escapes its name carried', () => {
    const { skipped } = upstreamTools(configOf(), [listed('bad\u001b[31mname\u202e')], never, always);
    expect(skipped).toEqual([
      { name: 'badname', reason: 'the name, with its prefix, is not 1-64 letters, digits, _ or -' },
    ]);
  });

  it('takes the title from the tool, then its annotations, then its name', () => {
    const titles = upstreamTools(
      configOf(),
      [
        listed('a', { title: 'Tool title', annotations: { title: 'Annotation title' } }),
        listed('b', { annotations: { title: 'Annotation title' } }),
        listed('c'),
      ],
      never,
      always,
    ).tools.map((t) => [t.title, t.description]);
    expect(titles).toEqual([
      ['Tool title', ''],
      ['Annotation title', ''],
      ['c', ''],
    ]);
  });

  it('fills missing hints with the protocol defaults, which assume the worst', () => {
    const [bare, partial] = upstreamTools(
      configOf(),
      [listed('bare'), listed('partial', { annotations: { readOnlyHint: true, openWorldHint: false } })],
      never,
      always,
    ).tools;
    expect(bare?.annotations).toEqual({
      readOnlyHint: false,
      destructiveHint: true,
      idempotentHint: false,
      openWorldHint: true,
    });
    expect(partial?.annotations).toEqual({
      readOnlyHint: true,
      destructiveHint: true,
      idempotentHint: false,
      openWorldHint: false,
    });
  });

  it("shows the upstream's schemas as given, under the configured scope", () => {
    const inputSchema = {
      type: 'object' as const,
      properties: { q: { type: 'string', pattern: '^[a-z]+$', 'x-vendor': { keep: true } } },
      required: ['q'],
    };
    const outputSchema = { type: 'object' as const, properties: { hits: { type: 'array' } } };
    const [tool, noOutput] = upstreamTools(
      configOf({ scope: 'files:read' }),
      [listed('search', { inputSchema, outputSchema }), listed('plain')],
      never,
      always,
    ).tools;
    expect(tool?.schemas?.input).toEqual(inputSchema);
    expect(tool?.schemas?.output).toEqual(outputSchema);
    expect(tool?.scopes).toEqual(['files:read']);
    expect(noOutput?.schemas).not.toHaveProperty('output');
    expect(upstreamTools(configOf(), [listed('x')], never, always).tools[0]?.scopes).toEqual([
      'upstream:mem',
    ]);
  });

  it("hands a call to `call` with the upstream's own name and the tool's hints", async () => {
    const { calls, call } = recorder();
    let up = true;
    const [tool] = upstreamTools(
      configOf(),
      [listed('read_graph', { annotations: { readOnlyHint: true, idempotentHint: true } })],
      call,
      () => up,
    ).tools;
    const ctx = { requestId: 'r1' } as ToolContext;
    const args = { any: 'thing' };
    await expect(tool!.handler(args, ctx)).resolves.toBe(OK);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.name).toBe('read_graph');
    expect(calls[0]?.args).toBe(args);
    expect(calls[0]?.ctx).toBe(ctx);
    expect(calls[0]?.hints).toEqual({
      readOnlyHint: true,
      destructiveHint: true,
      idempotentHint: true,
      openWorldHint: true,
    });
    expect(tool!.available?.()).toBe(true);
    up = false;
    expect(tool!.available?.()).toBe(false);
  });

  it('forwards the arguments through the registry door unchanged, and refuses bad ones there', async () => {
    const { calls, call } = recorder();
    const inputSchema = {
      type: 'object' as const,
      properties: { limit: { type: 'integer', default: 10 }, query: { type: 'string' } },
      required: ['query'],
      additionalProperties: false,
    };
    const { tools } = upstreamTools(configOf(), [listed('search', { inputSchema })], call, always);
    const registry = new ToolRegistry([], 1_000_000);
    registry.replaceGroup('upstream:mem', tools);
    const ctx: ToolContext = {
      principal: localPrincipal(true, false, ['upstream:mem']),
      sandbox: {} as Sandbox,
      signal: new AbortController().signal,
      logger: pino({ level: 'silent' }),
      requestId: 'r1',
    };

    const args = { query: 'alice' };
    await expect(registry.invoke('mem_search', args, ctx)).resolves.toEqual(OK);
    expect(calls[0]?.args).toBe(args);
    expect(calls[0]?.args).toEqual({ query: 'alice' });

    await expect(registry.invoke('mem_search', { limit: 'ten' }, ctx)).rejects.toThrow(InvalidToolCall);
    await expect(registry.invoke('mem_search', { limit: 'ten' }, ctx)).rejects.toThrow(
      /Invalid arguments for mem_search: .*query/,
    );
    expect(calls).toHaveLength(1);
  });
});

describe('inputValidator', () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 2, pattern: '^[a-z]+$' },
      count: { type: 'integer', minimum: 1, maximum: 5, default: 3 },
      mode: { type: 'string', enum: ['fast', 'slow'] },
    },
    required: ['name'],
  };

  it('checks types, required properties, enums and bounds', () => {
    const check = inputValidator(schema);
    expect(check.safeParse({ name: 'ab', count: 2, mode: 'fast' }).success).toBe(true);
    const paths = (args: unknown) => {
      const result = check.safeParse(args);
      return result.success ? [] : result.error.issues.map((i) => i.path.join('.'));
    };
    expect(paths({})).toEqual(['name']);
    expect(paths({ name: 5 })).toEqual(['name']);
    expect(paths({ name: 'a' })).toEqual(['name']);
    expect(paths({ name: 'ab', count: 9 })).toEqual(['count']);
    expect(paths({ name: 'ab', count: 1.5 })).toEqual(['count']);
    expect(paths({ name: 'ab', mode: 'medium' })).toEqual(['mode']);
    expect(check.safeParse('not an object').success).toBe(false);
  });

  it('passes the arguments through as sent: no defaults added, no unknown keys stripped', () => {
    const args = { name: 'ab', extra: { nested: [1, 2] } };
    const parsed = inputValidator(schema).safeParse(args);
    expect(parsed.success).toBe(true);
    expect(parsed.data).toBe(args);
    expect(parsed.data).toEqual({ name: 'ab', extra: { nested: [1, 2] } });
  });

  it('leaves regular expressions to the upstream, so a catastrophic pattern cannot stall the server', () => {
    const evil = '^(a+)+$';
    const check = inputValidator({
      type: 'object',
      properties: {
        text: { type: 'string', pattern: evil },
        list: { type: 'array', items: { type: 'string', pattern: evil } },
      },
      patternProperties: { [evil]: { type: 'number' } },
      required: ['text'],
    });
    const attack = `${'a'.repeat(28)}b`;
    const started = performance.now();
    const result = check.safeParse({ text: attack, list: [attack], [attack]: 'not a number' });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(result.success).toBe(true);
    // Only the pattern is dropped: the type is still checked.
    expect(check.safeParse({ text: 1 }).success).toBe(false);
  });

  it('keeps checking a property that happens to be named pattern', () => {
    const check = inputValidator({
      type: 'object',
      properties: { pattern: { type: 'string' }, path: { type: 'string' } },
      required: ['pattern'],
    });
    expect(check.safeParse({ pattern: '*.ts' }).success).toBe(true);
    expect(check.safeParse({ path: '.' }).success).toBe(false);
    expect(check.safeParse({ pattern: 7 }).success).toBe(false);
  });

  it.each([
    ['a reference to nowhere', { type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }],
    ['an external reference', { type: 'object', properties: { a: { $ref: 'https://x.example/s' } } }],
    ['an unknown type', { type: 'frobnicate' }],
    ['properties that are null', { type: 'object', properties: null }],
  ])('accepts any object when the schema holds %s', (_label, unreadable) => {
    const check = inputValidator(unreadable);
    const args = { a: 1, b: ['x'] };
    const parsed = check.safeParse(args);
    expect(parsed.success).toBe(true);
    expect(parsed.data).toBe(args);
    expect(check.safeParse('text').success).toBe(false);
    expect(check.safeParse([1]).success).toBe(false);
  });
});

describe('toolResultOf', () => {
  it('keeps text, image, audio, resource and resource_link content, and nothing else of them', () => {
    const result = toolResultOf({
      content: [
        { type: 'text', text: 'hello', annotations: { audience: ['user'] }, _meta: { x: 1 } },
        { type: 'image', data: 'aW1n', mimeType: 'image/png' },
        { type: 'audio', data: 'YXVk', mimeType: 'audio/wav' },
        { type: 'resource', resource: { uri: 'file:///a.txt', mimeType: 'text/plain', text: 'A' } },
        { type: 'resource', resource: { uri: 'file:///b.bin', blob: 'Qg==' } },
        {
          type: 'resource_link',
          uri: 'file:///c.md',
          name: 'c.md',
          mimeType: 'text/markdown',
          description: 'C',
        },
        { type: 'resource_link', uri: 'file:///d', name: 'd' },
      ],
      _meta: { trace: 'abc' },
    } as CallToolResult);
    expect(result).toEqual({
      content: [
        { type: 'text', text: 'hello' },
        { type: 'image', data: 'aW1n', mimeType: 'image/png' },
        { type: 'audio', data: 'YXVk', mimeType: 'audio/wav' },
        { type: 'resource', resource: { uri: 'file:///a.txt', mimeType: 'text/plain', text: 'A' } },
        { type: 'resource', resource: { uri: 'file:///b.bin', blob: 'Qg==' } },
        {
          type: 'resource_link',
          uri: 'file:///c.md',
          name: 'c.md',
          mimeType: 'text/markdown',
          description: 'C',
        },
        { type: 'resource_link', uri: 'file:///d', name: 'd' },
      ],
    });
  });

  it('names a content type it does not know instead of passing it on', () => {
    const result = toolResultOf({
      content: [{ type: 'video', data: 'dmlk', url: 'https://x.example' }],
    } as unknown as CallToolResult);
    expect(result.content).toEqual([{ type: 'text', text: '[video content omitted]' }]);
  });

  it('keeps structured content only when it is an object, and keeps isError', () => {
    const text = [{ type: 'text' as const, text: 't' }];
    expect(toolResultOf({ content: text, structuredContent: { n: 1 } }).structuredContent).toEqual({ n: 1 });
    for (const structuredContent of [[1, 2], 'str', 5, null]) {
      const result = toolResultOf({ content: text, structuredContent } as unknown as CallToolResult);
      expect(result).not.toHaveProperty('structuredContent');
    }
    expect(toolResultOf({ content: text, isError: true }).isError).toBe(true);
    expect(toolResultOf({ content: text, isError: false })).not.toHaveProperty('isError');
    expect(toolResultOf({} as CallToolResult)).toEqual({ content: [] });
  });
});
