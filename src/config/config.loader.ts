import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CLIENT_ENV, ENV_KEYS, LOADER_ENV, STANDARD_ENV_KEYS } from './config.env.js';
import { ConfigError } from './config.errors.js';
import { configSchema, type BastionConfig } from './config.schema.js';
import { expandUpstreamVariables, readUpstreamsFile } from './upstreams-file.js';
import { parseYaml } from './yaml.js';

type Tree = Record<string, unknown>;

export interface LoadConfigOptions {
  /** Environment to read BASTION_* from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** A config file; when absent, BASTION_CONFIG or config/bastion.{yaml,yml,json} under cwd if present. */
  file?: string;
  /** Values that win over everything (command-line flags), keyed by dotted config key. */
  overrides?: Record<string, unknown>;
  /** Defaults of one command that differ from the schema's, used where no layer sets the key. */
  defaults?: Record<string, unknown>;
  cwd?: string;
}

const DEFAULT_FILES = ['config/bastion.yaml', 'config/bastion.yml', 'config/bastion.json'];

const SERVICE_LINK_HINT =
  'set by Kubernetes for a Service named "bastion" (a service link), not a Bastion setting: ' +
  'set enableServiceLinks: false in the pod spec';

/** Kubernetes injects BASTION_PORT=tcp://..., BASTION_SERVICE_HOST and more for a Service named bastion. */
function isServiceLink(name: string, value: string): boolean {
  return (
    name.startsWith('BASTION_SERVICE_') ||
    /^BASTION_PORT_\d+_/.test(name) ||
    (name === 'BASTION_PORT' && value.startsWith('tcp://'))
  );
}

/**
 * Builds the config: defaults < config file < BASTION_* environment < overrides; validated once. Upstream
 * MCP servers come from their own file (config/mcp.json or BASTION_UPSTREAMS) or the config's `upstreams`.
 */
export function loadConfig(options: LoadConfigOptions = {}): BastionConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const problems: string[] = [];

  const file =
    options.file ?? env.BASTION_CONFIG ?? DEFAULT_FILES.map((f) => path.join(cwd, f)).find(existsSync);
  const tree: Tree = file ? readConfigFile(path.resolve(cwd, file), problems) : {};
  const upstreams = readUpstreamsFile(env, cwd, problems);
  if (upstreams && tree.upstreams !== undefined)
    problems.push(`upstreams: set in ${path.basename(upstreams.file)} and in the config file; keep one`);
  else if (upstreams) tree.upstreams = upstreams.servers;
  expandUpstreamVariables(tree.upstreams, env, problems);

  for (const [name, key] of Object.entries(STANDARD_ENV_KEYS)) {
    const value = env[name];
    if (value) setPath(tree, key, value);
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('BASTION_') || value === undefined) continue;
    if (isServiceLink(name, value)) {
      problems.push(`${name}: ${SERVICE_LINK_HINT}`);
      continue;
    }
    const key = ENV_KEYS[name];
    if (key) setPath(tree, key, value);
    else if (![...LOADER_ENV, ...CLIENT_ENV].includes(name as never))
      problems.push(`${name}: unknown variable`);
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) setPath(tree, key, value);
  }
  for (const [key, value] of Object.entries(options.defaults ?? {})) {
    if (getPath(tree, key) === undefined) setPath(tree, key, value);
  }

  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(describeIssue(issue));
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return Object.freeze(parsed.data);
}

function readConfigFile(file: string, problems: string[]): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    problems.push(`config file ${path.basename(file)}: cannot be read`);
    return {};
  }
  try {
    const value: unknown = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (value === null || value === undefined) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`config file ${path.basename(file)}: must hold an object`);
      return {};
    }
    return value as Tree;
  } catch {
    problems.push(
      `config file ${path.basename(file)}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}`,
    );
    return {};
  }
}

function getPath(tree: Tree, dotted: string): unknown {
  let node: unknown = tree;
  for (const part of dotted.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Tree)[part];
  }
  return node;
}

function setPath(tree: Tree, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Tree;
  }
  node[parts[parts.length - 1] as string] = value;
}

interface Issue {
  path: PropertyKey[];
  code: string;
  message: string;
  keys?: string[];
  /** What was wrong with a record key (invalid_key). */
  issues?: Array<{ message: string }>;
}

// Messages name the key and what was expected; zod's own text never repeats the received value.
function describeIssue(issue: Issue): string {
  const key = issue.path.map(String).join('.') || '(root)';
  if (issue.code === 'unrecognized_keys') {
    const prefix = issue.path.length ? `${key}.` : '';
    return (issue.keys ?? []).map((k) => `${prefix}${k}: unknown key`).join('; ');
  }
  if (issue.code === 'invalid_key' && issue.issues?.[0]) return `${key}: ${issue.issues[0].message}`;
  return `${key}: ${issue.message}`;
}
