import { Module, type DynamicModule } from '@nestjs/common';
import { McpController } from './mcp/mcp.controller.js';
import { McpHttpService } from './mcp/mcp-http.service.js';
import type { Runtime } from './runtime.js';

@Module({})
export class AppModule {
  static forRuntime(runtime: Runtime): DynamicModule {
    return {
      module: AppModule,
      controllers: [McpController],
      providers: [{ provide: McpHttpService, useFactory: () => new McpHttpService(runtime) }],
    };
  }
}
