/**
 * A launcher, the way `npx` starts a package's server: `node npx-wrapper.mjs <node arguments>` starts
 * `node <node arguments>` as its own child, on the same stdin and stdout, and exits when it does. The server is
 * the launcher's child, not Bastion's; signals sent to the launcher are not passed on.
 */
import { spawn } from 'node:child_process';

const child = spawn(process.execPath, process.argv.slice(2), { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
