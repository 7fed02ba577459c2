import { Controller, Get, HttpCode, Inject, Res } from '@nestjs/common';
import { HealthCheckService } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/route-access.js';
import { ReadinessIndicators } from './readiness.indicators.js';

/**
 * Probes for orchestrators. Public, so they reveal nothing but up or down: the details of each check are
 * on /diagnostics, for admins. Never rate-limited: a refused probe would restart a healthy instance.
 */
@Public({ limited: false })
@Controller('health')
export class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(ReadinessIndicators) private readonly indicators: ReadinessIndicators,
  ) {}

  /** The process answers. */
  @Get('live')
  @HttpCode(200)
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** The process should get traffic: started, not draining, workspace usable, disk and heap within limits. */
  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<{ status: 'ok' | 'unavailable' }> {
    try {
      await this.health.check(this.indicators.all());
      return { status: 'ok' };
    } catch {
      void reply.code(503);
      return { status: 'unavailable' };
    }
  }
}
