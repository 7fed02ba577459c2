import { Controller, Get, Inject, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '../http/api-docs.js';
import { HealthCheckService } from '@nestjs/terminus';
import type { FastifyRequest } from 'fastify';
import { principalOf } from '../auth/request-principal.js';
import { RequireScope } from '../auth/route-access.js';
import { Lifecycle } from './lifecycle.js';
import { RUNTIME, type Runtime } from '../runtime.js';
import { Diagnostics, type DiagnosticsReport } from './diagnostics.js';
import { ReadinessIndicators } from './readiness.indicators.js';

/** GET /diagnostics: what an operator asks first, for admins only; every secret in it is masked. */
@ApiTags('operations')
@ApiBearerAuth()
@Controller('diagnostics')
@RequireScope('admin')
export class DiagnosticsController {
  private readonly diagnostics: Diagnostics;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(Lifecycle) lifecycle: Lifecycle,
    @Inject(HealthCheckService) health: HealthCheckService,
    @Inject(ReadinessIndicators) indicators: ReadinessIndicators,
  ) {
    this.diagnostics = new Diagnostics(runtime, lifecycle, async () => {
      try {
        return (await health.check(indicators.all())).details;
      } catch (error) {
        return (error as { response?: { details?: Record<string, unknown> } }).response?.details ?? {};
      }
    });
  }

  @Get()
  @ApiOperation({ summary: 'Version, uptime, build, masked config, checks, stores, in-flight requests' })
  @ApiOkResponse({ description: 'The report.' })
  async report(@Req() request: FastifyRequest): Promise<DiagnosticsReport> {
    this.runtime.audit.record({
      kind: 'admin',
      actor: principalOf(request).id,
      action: 'diagnostics.read',
      outcome: 'ok',
      requestId: request.id,
    });
    return this.diagnostics.report();
  }
}
