import { describe, expect, it } from '@jest/globals';
import { localPrincipal, type Principal } from '../auth/principal.js';
import { ToolRegistry } from '../tools/tool-registry.js';
import { workspaceTools } from '../workspace/workspace.tools.js';
import { REFUSAL_REASONS, Supervisor, type Decision } from './supervisor.js';

const registry = new ToolRegistry(workspaceTools, 1_000_000);
const writer = localPrincipal(false);
const reader = localPrincipal(true);
const limits = { maxToolCalls: 4, maxRepeats: 2 };

function turn(
  principal: Principal = writer,
  readOnly = false,
  supervisor = new Supervisor(registry, limits),
) {
  return supervisor.startTurn({ principal, conversationId: 'c1', requestId: 'r1', readOnly });
}

let callSeq = 0;
const call = (name: string, args: unknown = {}) => ({ id: `call-${++callSeq}`, name, arguments: args });
const reasonOf = (decision: Decision) => (decision.allow ? 'allow' : decision.reason);

describe('Supervisor', () => {
  it('allows a workspace tool within the principal’s scopes', () => {
    expect(turn().review(call('list_directory', { path: '.' }))).toEqual({ allow: true });
  });

  it('refuses a tool that does not exist, without echoing more than its name', () => {
    const decision = turn().review(call('rm_rf', {}));
    expect(reasonOf(decision)).toBe('unknown_tool');
    expect(decision.allow ? '' : decision.message).toContain('"rm_rf"');
  });

  it('refuses the agent’s own tool and administrative ones even when they exist', () => {
    const withConverse = new ToolRegistry(workspaceTools, 1_000_000);
    withConverse.register({ ...workspaceTools[0]!, name: 'converse', scopes: ['agent'] });
    const supervision = turn(writer, false, new Supervisor(withConverse, limits));
    expect(reasonOf(supervision.review(call('converse', {})))).toBe('unknown_tool');
  });

  it('refuses a write tool to a principal without files:write (out of scope)', () => {
    const decision = turn(reader).review(call('write_file', { path: 'a.txt', content: 'x' }));
    expect(reasonOf(decision)).toBe('out_of_scope');
  });

  it('refuses writes in a read-only conversation even for a principal that may write', () => {
    const decision = turn(writer, true).review(call('delete_file', { path: 'a.txt' }));
    expect(reasonOf(decision)).toBe('read_only');
    expect(reasonOf(turn(writer, true).review(call('read_text_file', { path: 'a.txt' })))).toBe('allow');
  });

  it('refuses arguments that fail the tool’s schema, naming the field', () => {
    const decision = turn().review(call('read_text_file', { path: 42 }));
    expect(reasonOf(decision)).toBe('invalid_arguments');
    expect(decision.allow ? '' : decision.message).toContain('path');
  });

  it('refuses the same call repeated beyond maxRepeats (a loop), whatever the key order', () => {
    const supervision = turn();
    expect(reasonOf(supervision.review(call('read_text_file', { path: 'a.txt', head: 3 })))).toBe('allow');
    expect(reasonOf(supervision.review(call('read_text_file', { head: 3, path: 'a.txt' })))).toBe('allow');
    expect(reasonOf(supervision.review(call('read_text_file', { path: 'a.txt', head: 3 })))).toBe('loop');
    expect(reasonOf(supervision.review(call('read_text_file', { path: 'b.txt', head: 3 })))).toBe('allow');
  });

  it('refuses calls beyond the per-turn budget, refused calls counted too', () => {
    const supervision = turn();
    supervision.review(call('nope'));
    for (const path of ['a', 'b', 'c'])
      expect(reasonOf(supervision.review(call('get_file_info', { path })))).toBe('allow');
    expect(reasonOf(supervision.review(call('get_file_info', { path: 'd' })))).toBe('budget');
  });

  it('counts per turn: a new turn starts with a fresh budget', () => {
    const supervisor = new Supervisor(registry, limits);
    const first = turn(writer, false, supervisor);
    for (const path of ['a', 'b', 'c', 'd']) first.review(call('get_file_info', { path }));
    expect(reasonOf(first.review(call('get_file_info', { path: 'e' })))).toBe('budget');
    expect(reasonOf(turn(writer, false, supervisor).review(call('get_file_info', { path: 'e' })))).toBe(
      'allow',
    );
  });

  it('tells its observers about every decision, with a known tool name or "other"', () => {
    const supervisor = new Supervisor(registry, limits);
    const seen: string[] = [];
    supervisor.observe(({ tool, decision, conversationId }) =>
      seen.push(`${conversationId}:${tool}:${reasonOf(decision)}`),
    );
    const supervision = turn(reader, false, supervisor);
    supervision.review(call('list_directory', { path: '.' }));
    supervision.review(call('made_up_tool'));
    supervision.review(call('write_file', { path: 'x', content: '' }));
    expect(seen).toEqual(['c1:list_directory:allow', 'c1:other:unknown_tool', 'c1:write_file:out_of_scope']);
    expect(REFUSAL_REASONS).toEqual(expect.arrayContaining(['unknown_tool', 'out_of_scope']));
  });
});
