import type { UpstreamConfig } from '../config/upstreams.schema.js';
import { Upstream, type UpstreamDeps, type UpstreamStatus } from './upstream.js';

/**
 * The upstream MCP servers Bastion fronts. Each connects in the background: a server that is down at start
 * does not hold Bastion back, and its tools appear when it comes up.
 */
export class Gateway {
  private readonly upstreams: Upstream[];

  constructor(configs: readonly UpstreamConfig[], deps: UpstreamDeps) {
    this.upstreams = configs.map((config) => new Upstream(config, deps));
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
