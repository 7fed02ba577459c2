import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseYaml } from './yaml.js';

type Tree = Record<string, unknown>;

/** Where upstreams are read from when BASTION_UPSTREAMS names no file. */
export const DEFAULT_UPSTREAMS_FILE = 'config/mcp.json';

/** The top-level keys of the files accepted: Bastion's and VS Code's `servers`, Claude Desktop's `mcpServers`. */
const SERVER_KEYS = ['servers', 'mcpServers'] as const;

/**
 * The upstreams of an mcp.json file (BASTION_UPSTREAMS, or config/mcp.json when present), keyed by name, or
 * undefined when there is no file. A file may hold `servers`, `mcpServers` or both, with distinct names.
 */
export function readUpstreamsFile(
  env: NodeJS.ProcessEnv,
  cwd: string,
  problems: string[],
): { file: string; servers: Tree } | undefined {
  const named = env.BASTION_UPSTREAMS;
  const file = named ? path.resolve(cwd, named) : path.join(cwd, DEFAULT_UPSTREAMS_FILE);
  if (!named && !existsSync(file)) return undefined;
  const label = `upstreams file ${path.basename(file)}`;
  let value: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    value = /\.ya?ml$/.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    const unreadable = (error as NodeJS.ErrnoException).code !== undefined;
    problems.push(`${label}: ${unreadable ? 'cannot be read' : 'not valid JSON'}`);
    return undefined;
  }
  if (!isTree(value)) {
    problems.push(`${label}: must hold an object with "servers" or "mcpServers"`);
    return undefined;
  }
  const servers: Tree = Object.create(null) as Tree; // so a name like constructor is not found there already
  for (const [key, section] of Object.entries(value)) {
    if (key === 'inputs') continue; // VS Code's prompted inputs: a ${input:...} use is reported below
    if (!(SERVER_KEYS as readonly string[]).includes(key)) {
      problems.push(`${label}: ${key}: unknown key (expected servers or mcpServers)`);
      continue;
    }
    if (!isTree(section)) {
      problems.push(`${label}: ${key}: must map names to servers`);
      continue;
    }
    for (const [name, entry] of Object.entries(section)) {
      if (name === '__proto__') problems.push(`${label}: ${name}: not an upstream name`);
      else if (name in servers) problems.push(`${label}: ${name}: defined twice`);
      servers[name] = entry;
    }
  }
  return { file, servers };
}

/** `${env:NAME}` (VS Code, Cursor), `${NAME}` and `${NAME:-default}` (Claude Code), and VS Code's `${input:id}`. */
const VARIABLE = /\$\{(?:(env|input):)?([A-Za-z_][A-Za-z0-9_.-]*)(?::-([^}]*))?\}/g;

/** The fields whose strings may name variables. */
const EXPANDED = ['command', 'args', 'env', 'cwd', 'url', 'headers'] as const;

/**
 * Replaces variables in the upstreams' commands, arguments, environments, URLs and headers with values from
 * Bastion's environment, so secrets stay out of the file and never come from a caller. A variable that is
 * not set is a configuration error naming it (never a value).
 */
export function expandUpstreamVariables(
  upstreams: unknown,
  env: NodeJS.ProcessEnv,
  problems: string[],
): void {
  if (!isTree(upstreams)) return;
  for (const [name, entry] of Object.entries(upstreams)) {
    if (!isTree(entry)) continue;
    for (const field of EXPANDED) {
      entry[field] = expandIn(entry[field], (text) =>
        expand(text, env, (message) => problems.push(`upstreams.${name}.${field}: ${message}`)),
      );
    }
  }
}

function expandIn(value: unknown, expandText: (text: string) => string): unknown {
  if (typeof value === 'string') return expandText(value);
  if (Array.isArray(value)) return value.map((item) => expandIn(item, expandText));
  if (isTree(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandIn(v, expandText)]));
  return value;
}

function expand(text: string, env: NodeJS.ProcessEnv, problem: (message: string) => void): string {
  return text.replace(VARIABLE, (match, kind: string | undefined, variable: string, fallback?: string) => {
    if (kind === 'input') {
      problem(
        `${match}: prompted inputs are a VS Code feature; use \${env:NAME} with the value in Bastion's environment`,
      );
      return '';
    }
    const value = env[variable];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    problem(`${match}: ${variable} is not set in Bastion's environment`);
    return '';
  });
}

function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
