import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { answerFor, sendAnswer } from './error-answer.js';

/**
 * Errors raised by a route instead of its answer, with the HTTP status the transport calls for, in the
 * route's own shape (JSON-RPC on /mcp, problem details on /v1, `{ error, message }` elsewhere). Anything
 * unexpected is a masked 500 logged with its details.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const answer = answerFor(error);
    if (answer.status >= 500 && answer.code === 'internal')
      this.logger.error({ err: error }, 'request failed');
    void sendAnswer(http.getRequest<FastifyRequest>(), http.getResponse<FastifyReply>(), answer);
  }
}
