import type { UpstreamConfig } from '../config/upstreams.schema.js';
import type { Upstream, UpstreamDeps, UpstreamStatus } from './upstream.js';

/**
 * The upstream MCP servers Bastion fronts. Each connects in the background: a server that is down at start
 * does not hold Bastion back, and its tools appear when it comes up.
 */
export class Gateway {
  private constructor(private readonly upstreams: Upstream[]) {}

  /** The gateway for `configs`; the MCP client is loaded only when there is an upstream to connect to. */
  static async open(configs: readonly UpstreamConfig[], deps: UpstreamDeps): Promise<Gateway> {
    if (configs.length === 0) return new Gateway([]);
    const { Upstream } = await import('./upstream.js');
    return new Gateway(configs.map((config) => new Upstream(config, deps)));
  }

  get size(): number {
    return this.upstreams.length;
  }

  start(): void {
    for (const upstream of this.upstreams) upstream.start();
  }

  /** Resolves once every upstream has tried to connect once. */
  async settled(): Promise<void> {
    await Promise.all(this.upstreams.map((u) => u.firstAttempt));
  }

  status(): UpstreamStatus[] {
    return this.upstreams.map((u) => u.status());
  }

  async close(): Promise<void> {
    await Promise.all(this.upstreams.map((u) => u.close()));
  }
}
