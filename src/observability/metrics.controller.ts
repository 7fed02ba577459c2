import { Controller, Get, Inject, Res, type DynamicModule } from '@nestjs/common';
import { ApiExcludeController } from '../http/api-docs.js';
import { PrometheusController, PrometheusModule } from '@willsoto/nestjs-prometheus';
import type { FastifyReply } from 'fastify';
import { register } from 'prom-client';
import { MetricsAccess } from '../auth/route-access.js';
import { ReadinessIndicators } from '../health/readiness.indicators.js';
import { inCluster, groupMetrics } from '../cluster/cluster-metrics.js';
import { RUNTIME, type Runtime } from '../runtime.js';
import { METRIC_PREFIX } from './metrics.js';

/**
 * /metrics in the Prometheus text format. The gate admits the configured scrape token, or a principal
 * holding the admin scope (on a loopback server without authentication, anyone local).
 */
@ApiExcludeController()
@Controller()
export class MetricsController extends PrometheusController {
  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(ReadinessIndicators) private readonly readiness: ReadinessIndicators,
  ) {
    super();
  }

  @Get()
  @MetricsAccess()
  override async index(@Res({ passthrough: true }) reply?: FastifyReply): Promise<string> {
    this.runtime.metrics.ready.set((await this.readiness.ready()) ? 1 : 0);
    if (!inCluster()) return super.index(reply);
    // A scrape lands on one worker: it answers for the whole `bastion serve --workers` group.
    reply?.header('Content-Type', register.contentType);
    return groupMetrics();
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
