import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { workspaceTools } from '../workspace/workspace.tools.js';
import { declaredTools, serverManifest } from './server-manifest.js';
import { VERSION } from './server-info.js';

const committed = JSON.parse(readFileSync('mcp_config.json', 'utf8')) as ReturnType<typeof serverManifest>;

describe('mcp_config.json', () => {
  it('is what the code declares (regenerate with `npm run manifest`)', () => {
    expect(committed).toEqual(JSON.parse(JSON.stringify(serverManifest())));
  });

  it('names the server, its version, endpoint, transports and revisions', () => {
    expect(committed.name).toBe('bastion');
    expect(committed.version).toBe(VERSION);
    expect(committed.endpoint).toBe('http://127.0.0.1:3000/mcp');
    expect(committed.transports.map((t) => t.type).sort()).toEqual(['stdio', 'streamable-http']);
    for (const transport of committed.transports) {
      expect(transport.protocolVersions).toEqual(expect.arrayContaining(['2026-07-28', '2025-06-18']));
    }
    expect(committed.authentication.map((a) => a.type)).toEqual(['none', 'api-key', 'oauth2']);
  });

  it('lists every workspace tool and converse, each with its scopes and the four annotations', () => {
    expect(committed.tools.map((t) => t.name)).toEqual([...workspaceTools.map((t) => t.name), 'converse']);
    expect(declaredTools()).toHaveLength(committed.tools.length);
    for (const tool of committed.tools) {
      expect(tool.scopes.length).toBeGreaterThan(0);
      for (const scope of tool.scopes) expect(committed.scopes).toContain(scope);
      expect(Object.keys(tool.annotations).sort()).toEqual([
        'destructiveHint',
        'idempotentHint',
        'openWorldHint',
        'readOnlyHint',
      ]);
    }
    expect(committed.tools.find((t) => t.name === 'edit_file')?.scopes).toEqual([
      'files:read',
      'files:write',
    ]);
  });
});
