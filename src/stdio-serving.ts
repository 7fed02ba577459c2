import os from 'node:os';
import path from 'node:path';
import { runStdio } from './mcp/stdio.runner.js';
import { createRuntime } from './runtime.js';
import { configFrom, onShutdown, type CommonFlags } from './serving-common.js';

// `bastion stdio`: MCP over stdin and stdout for a desktop client. It loads no HTTP stack.

/**
 * A stdio server is started by a desktop client in whatever directory it chooses (often the user's project
 * or /), so its state (the audit log) goes to the user's state directory unless a data directory is set.
 */
const STDIO_DEFAULTS = { dataDir: path.join(os.homedir(), '.local', 'state', 'bastion') };

export async function stdio(flags: CommonFlags): Promise<void> {
  const config = configFrom(flags, STDIO_DEFAULTS);
  const runtime = await createRuntime(config, { logTo: 'stderr', metrics: false });
  const handle = runStdio(runtime);
  onShutdown(
    config.server.shutdownGraceMs,
    async () => {
      await handle.close();
      runtime.surface.watcher.close();
      await runtime.close();
      return true;
    },
    runtime.logger,
  );
}
