import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { localPrincipal } from '../../src/auth/principal.js';
import { configSchema } from '../../src/config/config.schema.js';
import type { ToolContext, ToolResult } from '../../src/tools/tool.js';
import { ToolRegistry } from '../../src/tools/tool-registry.js';
import { Sandbox } from '../../src/workspace/sandbox.js';
import { workspaceTools } from '../../src/workspace/workspace.tools.js';

export interface WorkspaceFixture {
  /** A temp directory holding `ws/` (the workspace) and `outside/` (must never change). */
  base: string;
  root: string;
  outside: string;
  sandbox: Sandbox;
  registry: ToolRegistry;
  call(name: string, args: Record<string, unknown>, overrides?: Partial<ToolContext>): Promise<ToolResult>;
  cleanup(): void;
}

export async function createWorkspaceFixture(
  options: { readOnly?: boolean; limits?: Record<string, number> } = {},
): Promise<WorkspaceFixture> {
  const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bastion-ws-')));
  const root = path.join(base, 'ws');
  const outside = path.join(base, 'outside');
  const config = configSchema.parse({
    workspace: { root, readOnly: options.readOnly ?? false, limits: options.limits ?? {} },
  });
  const sandbox = await Sandbox.create({ ...config.workspace, createRoot: true });
  (await import('node:fs')).mkdirSync(outside, { recursive: true });
  const registry = new ToolRegistry(workspaceTools, config.workspace.limits.maxResponseBytes);
  const logger = pino({ level: 'silent' });
  const principal = localPrincipal(options.readOnly ?? false);
  return {
    base,
    root,
    outside,
    sandbox,
    registry,
    call: (name, args, overrides = {}) =>
      registry.invoke(name, args, {
        principal,
        sandbox,
        signal: new AbortController().signal,
        logger,
        requestId: 'test',
        ...overrides,
      }),
    cleanup: () => rmSync(base, { recursive: true, force: true }),
  };
}

export function textOf(result: ToolResult): string {
  const block = result.content[0];
  return block && block.type === 'text' ? block.text : '';
}
