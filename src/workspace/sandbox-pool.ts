import type { Principal } from '../auth/principal.js';
import { BastionError } from '../common/bastion-error.js';
import { Sandbox, type SandboxOptions } from './sandbox.js';

export class WorkspaceUnavailable extends BastionError {}

/**
 * The sandbox each principal works in: the shared workspace, or the root its credential is bound to.
 * Bound roots are opened once and kept (there are as many as the operator issued keys for).
 */
export class SandboxPool {
  private readonly bound = new Map<string, Promise<Sandbox>>();

  constructor(
    readonly shared: Sandbox,
    private readonly options: Omit<SandboxOptions, 'root' | 'createRoot'>,
  ) {}

  async for(principal: Principal): Promise<Sandbox> {
    const root = principal.workspace;
    if (!root) return this.shared;
    let sandbox = this.bound.get(root);
    if (!sandbox) {
      // A bound root follows the shared root's settings where the options leave one out.
      sandbox = Sandbox.create({ allowHardLinks: this.shared.allowHardLinks, ...this.options, root });
      this.bound.set(root, sandbox);
      // A root that is missing now may be created later: do not remember the failure.
      sandbox.catch(() => this.bound.delete(root));
    }
    try {
      return await sandbox;
    } catch {
      throw new WorkspaceUnavailable('workspace_unavailable', 'The workspace this client is bound to is not available.');
    }
  }
}
