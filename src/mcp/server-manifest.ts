import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/server';
import type { AgentService } from '../agent/agent.service.js';
import { converseTool } from '../agent/converse.tool.js';
import { SCOPES } from '../auth/principal.js';
import { configSchema } from '../config/config.schema.js';
import type { Tool } from '../tools/tool.js';
import { WORKSPACE_PROMPTS } from '../workspace/workspace.prompts.js';
import { WORKSPACE_TEMPLATES } from '../workspace/workspace.resources.js';
import { workspaceTools } from '../workspace/workspace.tools.js';
import { DESCRIPTION, MODERN_REVISION, SERVER_INFO, serverCapabilities } from './server-info.js';

/** The built-in defaults only: neither a config file nor the environment shapes the manifest. */
const DEFAULTS = configSchema.parse({});

/** Every tool a server can register; the agent's tool is described without an agent: only its declaration is read. */
export function declaredTools(): Tool[] {
  const { limits } = DEFAULTS.agent;
  return [...workspaceTools, converseTool({} as AgentService, limits.maxPromptChars)];
}

/**
 * The manifest in mcp_config.json: what a client or a catalogue needs to know before connecting, built from
 * the code that serves it (`npm run manifest` writes it; CI fails when the committed file differs).
 */
export function serverManifest() {
  const { server } = DEFAULTS;
  const endpoint = `http://${server.host}:${server.port}/mcp`;
  return {
    name: SERVER_INFO.name,
    title: SERVER_INFO.title,
    version: SERVER_INFO.version,
    description: DESCRIPTION,
    endpoint,
    transports: [
      {
        type: 'streamable-http',
        url: endpoint,
        protocolVersions: [MODERN_REVISION, ...SUPPORTED_PROTOCOL_VERSIONS],
        stateless: true,
      },
      {
        type: 'stdio',
        command: 'bastion',
        args: ['stdio', '--workspace', '.'],
        protocolVersions: [MODERN_REVISION, ...SUPPORTED_PROTOCOL_VERSIONS],
      },
    ],
    authentication: [
      { type: 'none', description: 'Loopback only: Bastion refuses any other bind without credentials.' },
      { type: 'api-key', header: 'Authorization', scheme: 'Bearer', format: 'bst_<id>_<secret>' },
      {
        type: 'oauth2',
        description: 'OAuth 2.1 resource server: JWT access tokens from the configured issuer.',
        protectedResourceMetadata: '/.well-known/oauth-protected-resource/mcp',
      },
    ],
    // upstream:<name> stands for the scope of each configured upstream MCP server (docs/upstreams.md).
    scopes: [...SCOPES, 'upstream:<name>'],
    capabilities: serverCapabilities('listen'),
    tools: declaredTools().map((tool) => ({
      name: tool.name,
      title: tool.title,
      description: tool.description,
      scopes: tool.scopes,
      annotations: tool.annotations,
    })),
    prompts: WORKSPACE_PROMPTS.map(({ name, title, scopes }) => ({ name, title, scopes })),
    resourceTemplates: WORKSPACE_TEMPLATES.map(({ name, uriTemplate, scopes }) => ({
      name,
      uriTemplate,
      scopes,
    })),
  };
}
