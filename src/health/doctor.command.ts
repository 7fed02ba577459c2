import { existsSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { printable } from '../common/printable.js';
import type { BastionConfig } from '../config/config.schema.js';
import type { UpstreamProbe } from '../gateway/upstream-probe.js';
import { workspaceTools } from '../workspace/workspace.tools.js';

type Out = (line: string) => void;

interface DoctorFlags {
  config?: string;
  upstream?: string;
}

/**
 * `bastion doctor`: loads the config as `serve` would (an invalid one fails with every problem named), then
 * connects to each configured upstream and prints what it found. Exit 0 when every enabled upstream answered,
 * 1 otherwise.
 */
export function doctorCommand(loadConfig: (flags: DoctorFlags) => BastionConfig, out: Out): Command {
  return new Command('doctor')
    .description('check the config and connect to every configured upstream MCP server')
    .addOption(new Option('--config <file>', 'config file, JSON or YAML (BASTION_CONFIG)'))
    .addOption(new Option('--upstream <name>', 'check this upstream only'))
    .action(async (flags: DoctorFlags) => {
      const config = loadConfig(flags);
      out(`config: ok`);
      const root = path.resolve(config.workspace.root);
      out(`workspace: ${root}${existsSync(root) ? '' : ' (created at start)'}`);
      const upstreams = config.upstreams.filter((u) => !flags.upstream || u.name === flags.upstream);
      if (flags.upstream && upstreams.length === 0)
        throw new Error(`No upstream is named ${flags.upstream}.`);
      if (upstreams.length === 0) {
        out('upstreams: none configured (config/mcp.json or BASTION_UPSTREAMS)');
        return;
      }
      // The MCP client is loaded only when there are upstreams to probe.
      const { probeUpstream } = await import('../gateway/upstream-probe.js');
      const taken = new Set([...workspaceTools.map((t) => t.name), 'converse']);
      const { maxResponseBytes } = config.workspace.limits;
      let failed = 0;
      for (const upstream of upstreams) {
        const probe = await probeUpstream(upstream, { maxResponseBytes, taken });
        if (probe.enabled && !probe.ok) failed += 1;
        // Security: an upstream's names and errors reach the operator's terminal as text, never as controls.
        for (const line of report(probe)) out(printable(line));
      }
      out(failed === 0 ? 'upstreams: all answered' : `upstreams: ${failed} of ${upstreams.length} failed`);
      if (failed > 0) process.exitCode = 1;
    });
}

function report(probe: UpstreamProbe): string[] {
  const lines = [`upstream ${probe.name}: ${probe.target}`];
  if (!probe.enabled) return [...lines, '  disabled'];
  if (!probe.ok) return [...lines, `  FAILED: ${probe.error ?? 'unknown failure'}`];
  const server = probe.server ? `${probe.server.name} ${probe.server.version}` : 'unnamed server';
  lines.push(`  ok: ${server}, connected in ${probe.connectMs} ms, ping ${probe.pingMs} ms`);
  lines.push(`  scope: ${probe.scope}`);
  lines.push(`  tools (${probe.tools?.length ?? 0}): ${probe.tools?.join(', ') || 'none'}`);
  for (const name of probe.clashes ?? []) lines.push(`  not offered: ${name} (the name is taken)`);
  for (const { name, reason } of probe.skipped ?? []) lines.push(`  not offered: ${name} (${reason})`);
  return lines;
}
