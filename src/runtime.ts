import type { Logger } from 'pino';
import type { BastionConfig } from './config/config.schema.js';
import type { McpSurface } from './mcp/mcp-server.factory.js';
import { createLogger } from './observability/logger.js';
import { ToolRegistry } from './tools/tool-registry.js';
import { FileWatcher } from './workspace/file-watcher.js';
import { Sandbox } from './workspace/sandbox.js';
import { SandboxPool } from './workspace/sandbox-pool.js';
import { WorkspacePrompts } from './workspace/workspace.prompts.js';
import { WorkspaceResources } from './workspace/workspace.resources.js';
import { workspaceTools } from './workspace/workspace.tools.js';

/** Injection token for the Runtime in the HTTP application. */
export const RUNTIME = Symbol('bastion:runtime');

/** What both transports serve: built once at start from validated config. */
export interface Runtime {
  config: BastionConfig;
  logger: Logger;
  /** The shared workspace. */
  sandbox: Sandbox;
  /** The workspace of each principal: the shared one, or the root its credential is bound to. */
  sandboxes: SandboxPool;
  surface: McpSurface;
}

export async function createRuntime(
  config: BastionConfig,
  logger: Logger = createLogger(config.log.level),
): Promise<Runtime> {
  const sandbox = await Sandbox.create({ ...config.workspace, createRoot: true });
  const { denyPatterns, limits, readOnly } = config.workspace;
  const sandboxes = new SandboxPool(sandbox, { denyPatterns, limits, readOnly });
  const registry = new ToolRegistry(workspaceTools, config.workspace.limits.maxResponseBytes);
  registry.observe((event) => {
    if (event.outcome !== 'ok')
      logger.info(
        { tool: event.tool, outcome: event.outcome, code: event.code, requestId: event.requestId },
        'tool call refused',
      );
  });
  return {
    config,
    logger,
    sandbox,
    sandboxes,
    surface: {
      registry,
      resources: new WorkspaceResources(),
      prompts: new WorkspacePrompts(),
      watcher: new FileWatcher(),
    },
  };
}
