// Third-party MCP checks against a freshly started Bastion: `npm run checks` (CI runs it after the tests).
//
// Starts `node dist/cli.js serve` on a free loopback port with a temporary workspace, then runs the shared
// checks (SHARED_CHECKS_DIR, default ../shared/checks): the official conformance suite for the 2025
// revisions (0.1.16) and for 2026-07-28 (0.2.0, REQUIREMENTS=2026-07-28), the Inspector CLI, Claude
// Desktop's bridge mcp-remote and a Cursor-style client. Fails unless every scenario that applies to a
// server without the suite's test_* fixtures passes, and every client lists the tools and calls one.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHECKS = path.resolve(process.env.SHARED_CHECKS_DIR ?? path.join(REPO, '..', 'shared', 'checks'));

// Scenarios that apply to any server (the rest need the suite's test_* fixture tools and prompts).
const SUITES = [
  {
    label: 'conformance 0.1.16 (2025 revisions)',
    env: {},
    required: [
      'server-initialize',
      'ping',
      'tools-list',
      'resources-list',
      'prompts-list',
      'logging-set-level',
      'server-sse-multiple-streams',
      'dns-rebinding-protection',
    ],
  },
  {
    label: 'conformance 0.2.0 (2026-07-28)',
    env: {
      MCPCHECKS_DIR: process.env.MCPCHECKS_2026_DIR ?? path.join(os.tmpdir(), 'mcpchecks-2026'),
      CONFORMANCE_VER: '0.2.0-alpha.12',
      REQUIREMENTS: '2026-07-28',
    },
    required: [
      'server-stateless',
      'tools-list',
      'resources-list',
      'prompts-list',
      'caching',
      'server-sse-multiple-streams',
      'sep-2164-resource-not-found',
      'dns-rebinding-protection',
      'http-header-validation',
    ],
    // Checks of server-stateless that call the suite's diagnostic fixture tools.
    fixtureChecks: {
      'server-stateless': [
        'sep-2575-server-rejects-undeclared-capability',
        'sep-2575-missing-capability-http-400',
        'sep-2575-http-server-no-independent-requests-on-stream',
        'sep-2575-server-no-log-without-loglevel',
      ],
    },
  },
];

const CLIENTS = ['inspector.sh', 'claude-desktop-sim.sh', 'cursor-sim.sh'];
const log = (message) => process.stdout.write(`[checks] ${message}\n`);

function startServer(workspace, dataDir) {
  const child = spawn(
    process.execPath,
    [
      path.join(REPO, 'dist', 'cli.js'),
      'serve',
      '--port',
      '0',
      '--workspace',
      workspace,
      '--data-dir',
      dataDir,
    ],
    { cwd: REPO, env: { ...process.env, BASTION_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start in 30 s:\n${stderr}`)), 30_000);
    child.stderr.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-20_000);
      const match = /serving MCP at (\S+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before serving:\n${stderr}`));
    });
  });
  return { child, url };
}

function run(script, url, env = {}) {
  const result = spawnSync('bash', [path.join(CHECKS, script), url], {
    env: { ...process.env, TOOL: 'read_text_file', TOOL_ARGS: '{"path":"hello.txt"}', ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 15 * 60_000,
  });
  process.stdout.write(result.stdout ?? '');
  if (result.status !== 0 && result.stderr) process.stdout.write(result.stderr.slice(-4000));
  return result;
}

/** Failures among the required scenarios of one suite run, read from its summary and per-check results. */
function suiteFailures(suite, outDir) {
  const summary = JSON.parse(readFileSync(path.join(outDir, 'summary.json'), 'utf8'));
  const byName = new Map(summary.scenarios.map((s) => [s.scenario, s]));
  const failures = [];
  for (const name of suite.required) {
    const scenario = byName.get(name);
    if (!scenario) {
      failures.push(`${name}: did not run`);
      continue;
    }
    if (scenario.status === 'PASS' || scenario.status === 'WARN') continue;
    const allowed = suite.fixtureChecks?.[name];
    const failed = allowed ? failedChecks(outDir, name) : null;
    if (failed && failed.every((id) => allowed.includes(id))) {
      log(`${name}: only its fixture-dependent checks fail (${failed.join(', ')}), as expected`);
      continue;
    }
    failures.push(`${name}: ${scenario.status} ${scenario.reason}`);
  }
  return failures;
}

function failedChecks(outDir, scenario) {
  const results = path.join(outDir, 'results');
  const dir = readdirSync(results).find((d) => d.startsWith(`server-${scenario}-`));
  if (!dir) return null;
  const checks = JSON.parse(readFileSync(path.join(results, dir, 'checks.json'), 'utf8'));
  return checks.filter((c) => c.status === 'FAILURE').map((c) => c.id);
}

async function main() {
  if (!existsSync(path.join(CHECKS, 'conformance.sh'))) {
    throw new Error(`the shared checks are not at ${CHECKS} (set SHARED_CHECKS_DIR)`);
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bastion-checks-'));
  const workspace = path.join(tmp, 'workspace');
  mkdirSync(workspace);
  writeFileSync(path.join(workspace, 'hello.txt'), 'hello from the Bastion workspace\n');
  const server = startServer(workspace, path.join(tmp, 'data'));
  const failures = [];
  try {
    const url = await server.url;
    log(`server at ${url}`);
    for (const suite of SUITES) {
      log(suite.label);
      const outDir = path.join(tmp, suite.label.replace(/\W+/g, '-'));
      run('conformance.sh', url, { ...suite.env, OUT_DIR: outDir });
      failures.push(...suiteFailures(suite, outDir).map((f) => `${suite.label}: ${f}`));
    }
    for (const client of CLIENTS) {
      log(client);
      const { status } = run(client, url);
      if (status !== 0) failures.push(`${client}: exit ${status}`);
    }
  } finally {
    const { child } = server;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(tmp, { recursive: true, force: true });
  }
  if (failures.length > 0) {
    log(`FAILED:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  } else {
    log('every applicable conformance scenario and every client check passed');
  }
}

await main();
