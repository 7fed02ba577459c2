import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import type { AgentService } from '../agent/agent.service.js';
import { converseTool } from '../agent/converse.tool.js';
import { workspaceTools } from '../workspace/workspace.tools.js';
import { VERSION } from './server-info.js';

const manifest = JSON.parse(readFileSync('mcp_config.json', 'utf8')) as {
  name: string;
  version: string;
  endpoint: string;
  transports: Array<{ type: string }>;
  tools: Array<{ name: string; scope: string; readOnlyHint: boolean; destructiveHint: boolean }>;
};

describe('mcp_config.json', () => {
  it('names the server, its version, endpoint and transports', () => {
    expect(manifest.name).toBe('bastion');
    expect(manifest.version).toBe(VERSION);
    expect(manifest.endpoint).toBe('http://127.0.0.1:3000/mcp');
    expect(manifest.transports.map((t) => t.type).sort()).toEqual(['stdio', 'streamable-http']);
  });

  it('lists exactly the tools the server registers, with their scopes and hints', () => {
    expect(manifest.tools).toEqual(
      // The agent's tool is described without an agent: only its declaration is read.
      [...workspaceTools, converseTool({} as AgentService, 1)].map((t) => ({
        name: t.name,
        title: t.title,
        scope: t.scope,
        readOnlyHint: t.annotations.readOnlyHint,
        destructiveHint: t.annotations.destructiveHint,
      })),
    );
  });
});
