import { spawnSync } from 'node:child_process';

export interface ToolRun {
  status: number | null;
  stdout: string;
  /** stdout then stderr, as the tool printed them. */
  output: string;
}

export interface ToolOptions {
  /** The Debian package that provides the command, named in the error when it is missing. */
  debianPackage: string;
  cwd?: string;
  input?: string;
}

const OUTPUT_LIMIT = 64 * 1024 * 1024;

/**
 * Runs a command-line tool from PATH and returns its exit status and output. Throws, rather than letting
 * tests skip, when the tool is not installed.
 */
export function runTool(command: string, args: string[], options: ToolOptions): ToolRun {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    input: options.input,
    encoding: 'utf8',
    maxBuffer: OUTPUT_LIMIT,
  });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error(
      `${command} is not on PATH; the deploy tests need it: apt-get install -y ${options.debianPackage}`,
    );
  }
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, output: `${result.stdout}${result.stderr}` };
}
