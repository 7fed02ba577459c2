import { All, Controller, Inject, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { McpHttpService } from './mcp-http.service.js';

/** POST (and GET/DELETE, answered per revision by the SDK) on /mcp. */
@Controller('mcp')
export class McpController {
  constructor(@Inject(McpHttpService) private readonly mcp: McpHttpService) {}

  @All()
  async handle(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    reply.hijack();
    await this.mcp.handle(request.raw, reply.raw, request.body);
  }
}
