import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { AuthGuard } from './auth/auth.guard.js';
import { Authenticator } from './auth/authenticator.js';
import { WellKnownController } from './auth/well-known.controller.js';
import { HealthController } from './health/health.controller.js';
import { Lifecycle } from './health/lifecycle.js';
import { ReadinessIndicators } from './health/readiness.indicators.js';
import { McpController } from './mcp/mcp.controller.js';
import { McpHttpService } from './mcp/mcp-http.service.js';
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
    return {
      module: AppModule,
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [McpController, WellKnownController, HealthController],
      providers: [
        { provide: RUNTIME, useValue: runtime },
        { provide: Authenticator, useValue: authenticator },
        { provide: Lifecycle, useValue: lifecycle },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: McpHttpService, useFactory: () => new McpHttpService(runtime) },
        ReadinessIndicators,
      ],
    };
  }
}
