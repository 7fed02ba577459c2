import type { Logger } from 'pino';
import type { BastionConfig } from './config/config.schema.js';
import type { McpSurface } from './mcp/mcp-server.factory.js';
import { createLogger } from './observability/logger.js';
import { ToolRegistry } from './tools/tool-registry.js';
import { FileWatcher } from './workspace/file-watcher.js';
import { Sandbox } from './workspace/sandbox.js';
import { WorkspacePrompts } from './workspace/workspace.prompts.js';
import { WorkspaceResources } from './workspace/workspace.resources.js';
import { workspaceTools } from './workspace/workspace.tools.js';

/** What both transports serve: built once at start from validated config. */
export interface Runtime {
  config: BastionConfig;
  logger: Logger;
  sandbox: Sandbox;
  surface: McpSurface;
}

export async function createRuntime(
  config: BastionConfig,
  logger: Logger = createLogger(config.log.level),
): Promise<Runtime> {
  const sandbox = await Sandbox.create({ ...config.workspace, createRoot: true });
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
    surface: {
      registry,
      resources: new WorkspaceResources(),
      prompts: new WorkspacePrompts(),
      watcher: new FileWatcher(),
    },
  };
}
