import { timingSafeEqual } from 'node:crypto';
import { Controller, Get, Inject, Req, Res, type DynamicModule } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { PrometheusController, PrometheusModule } from '@willsoto/nestjs-prometheus';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { register } from 'prom-client';
import { Public } from '../auth/auth.decorators.js';
import { Authenticator } from '../auth/authenticator.js';
import { ReadinessIndicators } from '../health/readiness.indicators.js';
import { inCluster, groupMetrics } from '../cluster/cluster-metrics.js';
import { RUNTIME, type Runtime } from '../runtime.js';
import { METRIC_PREFIX } from './metrics.js';

/**
 * /metrics in the Prometheus text format. Readable with the configured scrape token, or by a principal
 * holding the admin scope (on a loopback server without authentication, by anyone local).
 */
@ApiExcludeController()
@Public()
@Controller()
export class MetricsController extends PrometheusController {
  private readonly token: Buffer | undefined;

  constructor(
    @Inject(Authenticator) private readonly auth: Authenticator,
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(ReadinessIndicators) private readonly readiness: ReadinessIndicators,
  ) {
    super();
    const { token } = runtime.config.metrics;
    this.token = token ? Buffer.from(token) : undefined;
  }

  @Get()
  override async index(
    @Req() request?: FastifyRequest,
    @Res({ passthrough: true }) reply?: FastifyReply,
  ): Promise<string> {
    const authorization = request?.headers.authorization;
    if (!this.scrapeToken(authorization)) {
      const principal = await this.auth.authenticate(authorization);
      this.auth.requireScope(principal, 'admin');
    }
    this.runtime.metrics.ready.set((await this.readiness.ready()) ? 1 : 0);
    if (!inCluster()) return super.index(reply);
    // A scrape lands on one worker: it answers for the whole `bastion serve --workers` group.
    reply?.header('Content-Type', register.contentType);
    return groupMetrics();
  }

  private scrapeToken(authorization: string | undefined): boolean {
    if (!this.token || !authorization?.startsWith('Bearer ')) return false;
    const offered = Buffer.from(authorization.slice('Bearer '.length).trim());
    return offered.length === this.token.length && timingSafeEqual(offered, this.token);
  }
}

/** The Prometheus module with Bastion's controller; process metrics are registered once per process. */
export function metricsModule(): DynamicModule {
  const collected = register.getSingleMetric(`${METRIC_PREFIX}process_cpu_user_seconds_total`) !== undefined;
  return PrometheusModule.register({
    controller: MetricsController,
    path: '/metrics',
    defaultMetrics: { enabled: !collected, config: { prefix: METRIC_PREFIX } },
  });
}
