import { describe, expect, it } from '@jest/globals';
import { PathPolicy } from './path-policy.js';
import { DEFAULT_DENY_PATTERNS } from '../config/config.schema.js';
import { SandboxRefusal } from './sandbox.errors.js';

const policy = new PathPolicy('/srv/ws', DEFAULT_DENY_PATTERNS, '/link/ws');

function refusal(input: string): SandboxRefusal {
  try {
    policy.toRelative(input);
  } catch (e) {
    return e as SandboxRefusal;
  }
  throw new Error(`accepted ${input}`);
}

describe('PathPolicy.toRelative', () => {
  it.each([
    ['a.txt', 'a.txt'],
    ['./dir/a.txt', 'dir/a.txt'],
    ['dir//sub/', 'dir/sub'],
    ['.', ''],
    ['a/../b', 'b'],
    ['/srv/ws', ''],
    ['/srv/ws/dir/x', 'dir/x'],
    ['/link/ws/dir/x', 'dir/x'],
    ['\u2024\u2024/x', '\u2024\u2024/x'],
    ['\uff0e\uff0e/x', '\uff0e\uff0e/x'],
  ])('accepts %j as %j', (input, expected) => {
    expect(policy.toRelative(input)).toBe(expected);
  });

  it.each([
    ['../etc/passwd', 'outside_workspace'],
    ['a/../../b', 'outside_workspace'],
    ['../../../../../../../../etc', 'outside_workspace'],
    ['/etc/passwd', 'outside_workspace'],
    ['/srv/ws-evil/x', 'outside_workspace'],
    ['/srv/wsx', 'outside_workspace'],
    ['~', 'outside_workspace'],
    ['~/.ssh/id_rsa', 'outside_workspace'],
    ['a\0b', 'invalid_path'],
    ['file:///etc/passwd', 'invalid_path'],
    ['C:\\Windows\\system.ini', 'invalid_path'],
    ['C:/Windows', 'invalid_path'],
    ['..\\..\\etc\\passwd', 'invalid_path'],
    ['', 'invalid_path'],
    ['.git/config', 'denied'],
    ['.git', 'denied'],
    ['vendor/lib/.git/hooks/pre-commit', 'denied'],
    ['app/.env', 'denied'],
    ['.env.production', 'denied'],
    ['certs/server.pem', 'denied'],
    ['keys/x.key', 'denied'],
    ['home/id_rsa', 'denied'],
    ['dir/.bastion-tmp-123', 'denied'],
    // Case-insensitive filesystems (macOS by default) serve `.env` under these names.
    ['.ENV', 'denied'],
    ['.Env', 'denied'],
    ['x.PEM', 'denied'],
    ['k.Key', 'denied'],
    ['.GIT/config', 'denied'],
    ['Home/ID_RSA.pub', 'denied'],
    ['dir/.BASTION-TMP-123', 'denied'],
  ])('refuses %j (%s)', (input, code) => {
    expect(refusal(input).code).toBe(code);
  });

  it('quotes only the client path in refusals, never the root', () => {
    const message = refusal('/etc/shadow').message;
    expect(message).toContain('"/etc/shadow"');
    expect(message).not.toContain('/srv/ws');
  });

  it('treats a prefix look-alike sibling as outside', () => {
    expect(policy.containedRelative('/srv/ws-evil/x')).toBeNull();
    expect(policy.containedRelative('/srv/ws/x')).toBe('x');
    expect(policy.containedRelative('/srv/ws')).toBe('');
  });

  it('hides everything below a denied directory', () => {
    expect(policy.isHidden('.git/objects/ab')).toBe(true);
    expect(policy.isHidden('src/main.ts')).toBe(false);
  });

  it('hides a denied name spelled in another case (.ENV, x.PEM) from listings', () => {
    expect(policy.isHidden('.ENV')).toBe(true);
    expect(policy.isHidden('vendor/.Git/HEAD')).toBe(true);
    expect(policy.isHidden('certs/x.PEM')).toBe(true);
    expect(policy.isHidden('SRC/Main.ts')).toBe(false);
  });
});
