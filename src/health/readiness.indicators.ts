import { constants, promises as fs } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { getHeapStatistics } from 'node:v8';
import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { RUNTIME, type Runtime } from '../runtime.js';
import { Lifecycle } from './lifecycle.js';

/** What /health/ready checks. Each indicator reports details for /diagnostics; the public answer has none. */
@Injectable()
export class ReadinessIndicators {
  constructor(
    @Inject(HealthIndicatorService) private readonly health: HealthIndicatorService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(Lifecycle) private readonly lifecycle: Lifecycle,
  ) {}

  all(): Array<() => Promise<HealthIndicatorResult>> {
    const checks = [() => this.serving(), () => this.workspace(), () => this.disk(), () => this.heap()];
    if (this.runtime.redis) checks.push(() => this.redis());
    if (this.runtime.agent) checks.push(() => this.conversations());
    return checks;
  }

  /** Whether every check passes, as /health/ready would answer. */
  async ready(): Promise<boolean> {
    const results = await Promise.all(this.all().map((check) => check()));
    return results.every((result) => Object.values(result).every((entry) => entry.status === 'up'));
  }

  /** The conversation store answers within a second. A provider's open circuit is not a readiness failure:
   * every instance shares the provider, so taking this one out of rotation would not help. */
  async conversations(): Promise<HealthIndicatorResult> {
    const check = this.health.check('conversations');
    const store = this.runtime.agent?.store;
    try {
      if (!store) return check.up({ configured: false });
      await Promise.race([store.ping(), sleep(1_000).then(() => Promise.reject(new Error('timeout')))]);
      return check.up({ kind: store.kind });
    } catch {
      return check.down({ kind: store?.kind, message: 'unreachable' });
    }
  }

  /** The shared store answers PING within a second. */
  async redis(): Promise<HealthIndicatorResult> {
    const check = this.health.check('redis');
    const { redis } = this.runtime;
    try {
      if (!redis) return check.up({ configured: false });
      await Promise.race([redis.ping(), sleep(1_000).then(() => Promise.reject(new Error('timeout')))]);
      return check.up();
    } catch {
      return check.down({ message: 'unreachable' });
    }
  }

  async serving(): Promise<HealthIndicatorResult> {
    const check = this.health.check('lifecycle');
    const state = this.lifecycle.state;
    return state === 'ready' ? check.up({ state }) : check.down({ state });
  }

  /** The workspace root can be read and, unless the server is read-only, written. */
  async workspace(): Promise<HealthIndicatorResult> {
    const check = this.health.check('workspace');
    const { readOnly } = this.runtime.config.workspace;
    try {
      await fs.access(
        this.runtime.sandbox.policy.root,
        readOnly ? constants.R_OK : constants.R_OK | constants.W_OK,
      );
      return check.up({ writable: !readOnly });
    } catch {
      return check.down({ message: readOnly ? 'not readable' : 'not readable and writable' });
    }
  }

  async disk(): Promise<HealthIndicatorResult> {
    const check = this.health.check('disk');
    const { minFreeDiskBytes } = this.runtime.config.health;
    try {
      const stats = await fs.statfs(this.runtime.sandbox.policy.root);
      const freeBytes = stats.bavail * stats.bsize;
      return freeBytes >= minFreeDiskBytes
        ? check.up({ freeBytes })
        : check.down({ freeBytes, minFreeDiskBytes });
    } catch {
      return check.down({ message: 'free space unknown' });
    }
  }

  async heap(): Promise<HealthIndicatorResult> {
    const check = this.health.check('heap');
    const maxHeapBytes = this.runtime.config.health.maxHeapBytes ?? 0.9 * getHeapStatistics().heap_size_limit;
    const heapUsed = process.memoryUsage().heapUsed;
    return heapUsed <= maxHeapBytes ? check.up({ heapUsed }) : check.down({ heapUsed, maxHeapBytes });
  }
}
