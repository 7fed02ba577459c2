import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthGuard } from './auth/auth.guard.js';
import { Authenticator } from './auth/authenticator.js';
import { WellKnownController } from './auth/well-known.controller.js';
import { McpController } from './mcp/mcp.controller.js';
import { McpHttpService } from './mcp/mcp-http.service.js';
import { RUNTIME, type Runtime } from './runtime.js';

@Module({})
export class AppModule {
  static forRuntime(runtime: Runtime, authenticator: Authenticator): DynamicModule {
    return {
      module: AppModule,
      controllers: [McpController, WellKnownController],
      providers: [
        { provide: RUNTIME, useValue: runtime },
        { provide: Authenticator, useValue: authenticator },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: McpHttpService, useFactory: () => new McpHttpService(runtime) },
      ],
    };
  }
}
