import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { runTool } from '../support/system-tools.js';

// Every shell script and YAML file the repository ships, through shellcheck (its defaults; a script
// disables a check in place, saying why) and yamllint (with the repository's .yamllint.yaml). A finding
// fails the test with the tool's own report.

const ROOT = path.resolve('.');
const YAMLLINT_CONFIG = '.yamllint.yaml';

/** Tracked files still present, and new ones git does not ignore. */
const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
  cwd: ROOT,
  encoding: 'utf8',
})
  .split('\0')
  .filter((file) => file && statSync(path.join(ROOT, file), { throwIfNoEntry: false })?.isFile());

function isShellScript(file: string): boolean {
  if (/\.(sh|bash)$/.test(file)) return true;
  const firstLine = readFileSync(path.join(ROOT, file), 'utf8').split('\n', 1)[0] ?? '';
  return /^#!\s*\S*\/(env\s+)?(ba|da|k)?sh\b/.test(firstLine);
}

const scripts = files.filter(isShellScript).sort();
const yamlFiles = files.filter((file) => /\.ya?ml$/.test(file)).sort();

function shellcheck(args: string[], input?: string): { status: number | null; output: string } {
  const run = runTool('shellcheck', ['--format=gcc', ...args], {
    debianPackage: 'shellcheck',
    cwd: ROOT,
    ...(input === undefined ? {} : { input }),
  });
  return { status: run.status, output: run.output };
}

function yamllint(args: string[], input?: string): { status: number | null; output: string } {
  const run = runTool(
    'yamllint',
    ['--strict', '--format=parsable', `--config-file=${YAMLLINT_CONFIG}`, ...args],
    {
      debianPackage: 'yamllint',
      cwd: ROOT,
      ...(input === undefined ? {} : { input }),
    },
  );
  return { status: run.status, output: run.output };
}

describe('shell scripts (shellcheck)', () => {
  it('finds the scripts CI runs among the files', () => {
    expect(scripts).toEqual(
      expect.arrayContaining(['.ci/run', 'scripts/check-nginx.sh', 'scripts/check-prometheus.sh']),
    );
  });

  it.each(scripts)('%s has no finding', (script) => {
    expect(shellcheck([script])).toEqual({ status: 0, output: '' });
  });

  it('still reports an unquoted expansion under the repository settings', () => {
    const run = shellcheck(['--shell=bash', '-'], 'rm -rf $1/cache\n');
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('[SC2086]');
  });
});

describe('YAML files (yamllint)', () => {
  it('finds the Compose file, the manifests, the monitoring and the example configuration among the files', () => {
    expect(yamlFiles).toEqual(
      expect.arrayContaining([
        'docker-compose.yml',
        'deploy/kubernetes/deployment.yaml',
        'monitoring/prometheus/alerts.yml',
        'monitoring/grafana/provisioning/datasources/prometheus.yml',
        'config/bastion.example.yaml',
      ]),
    );
  });

  it('has no finding, warnings included', () => {
    expect(yamllint(yamlFiles)).toEqual({ status: 0, output: '' });
  });

  it('still reports a duplicate key and a YAML 1.1 boolean under the repository settings', () => {
    const run = yamllint(['-'], 'replicas: 2\nreplicas: 3\nreadOnly: yes\n');
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('(key-duplicates)');
    expect(run.output).toContain('(truthy)');
  });
});
