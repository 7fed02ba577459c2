import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Authenticator } from './auth/authenticator.js';
import { WellKnownController } from './auth/well-known.controller.js';
import { ConversationsController } from './conversations/conversations.controller.js';
import { DiagnosticsController } from './health/diagnostics.controller.js';
import { HealthController } from './health/health.controller.js';
import { Lifecycle } from './health/lifecycle.js';
import { ReadinessIndicators } from './health/readiness.indicators.js';
import { metricsModule } from './observability/metrics.controller.js';
import { RUNTIME, type Runtime } from './runtime.js';

/** What the HTTP application is built from: the runtime both transports share, and the HTTP-only parts. */
export interface HttpParts {
  runtime: Runtime;
  authenticator: Authenticator;
  lifecycle: Lifecycle;
}

@Module({})
export class AppModule {
  static forRuntime({ runtime, authenticator, lifecycle }: HttpParts): DynamicModule {
    const { config } = runtime;
    return {
      module: AppModule,
      // Controllers of library modules (/metrics) need the runtime and the authenticator too.
      global: true,
      exports: [RUNTIME, Authenticator, Lifecycle, ReadinessIndicators],
      imports: [
        TerminusModule.forRoot({ logger: false }),
        ...(config.metrics.enabled ? [metricsModule()] : []),
      ],
      controllers: [
        WellKnownController,
        HealthController,
        DiagnosticsController,
        ...(runtime.agent ? [ConversationsController] : []),
      ],
      providers: [
        { provide: RUNTIME, useValue: runtime },
        { provide: Authenticator, useValue: authenticator },
        { provide: Lifecycle, useValue: lifecycle },
        // Authentication, limits and Host/Origin are the HTTP gate's (http/http-gate.ts), before any body;
        // /mcp is a plain route (mcp/mcp.route.ts), outside the framework's pipeline.
        ReadinessIndicators,
      ],
    };
  }
}
