import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Req,
  Res,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiResponse,
  ApiTags,
} from '../http/api-docs.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ConverseAnswer } from '../agent/agent.service.js';
import { principalOf } from '../auth/request-principal.js';
import { RequireScope } from '../auth/route-access.js';
import { RUNTIME, type Runtime } from '../runtime.js';
import type { ConversationMeta, Page } from './conversation.js';
import {
  AnswerDto,
  ConversationHistoryDto,
  ConversationPageDto,
  CreateConversationDto,
  ListConversationsQuery,
  PostMessageDto,
  ProblemDto,
} from './conversation.dto.js';
import type { ConversationExport, ConversationHistory } from './conversation.service.js';

const DEFAULT_PAGE_SIZE = 20;

const conversationId = new ParseUUIDPipe({
  exceptionFactory: () => new BadRequestException('The conversation id must be a UUID.'),
});

/**
 * The SecureAgent for clients that do not speak MCP, and the owner's view of their conversations. Every
 * route needs the `agent` scope and sees only the caller's own conversations.
 */
@ApiTags('conversations')
@ApiBearerAuth()
@ApiResponse({ status: 400, description: 'Invalid input.', type: ProblemDto })
@ApiResponse({ status: 401, description: 'No valid credential.', type: ProblemDto })
@ApiResponse({ status: 403, description: 'The credential lacks the agent scope.', type: ProblemDto })
@Controller('v1/conversations')
@RequireScope('agent')
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
export class ConversationsController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Post()
  @ApiOperation({ summary: 'Start a conversation' })
  @ApiBody({ type: CreateConversationDto, required: false })
  @ApiCreatedResponse({ description: 'Its id.', schema: { properties: { id: { type: 'string' } } } })
  async create(
    @Req() request: FastifyRequest,
    @Body() body: CreateConversationDto = {},
  ): Promise<{ id: string }> {
    const conversation = await this.agent.service.start(principalOf(request), request.id, body.read_only);
    return { id: conversation.id };
  }

  @Post(':id/messages')
  @HttpCode(200)
  @ApiOperation({ summary: 'Send a prompt; the SecureAgent answers (the same shape as the converse tool)' })
  @ApiOkResponse({ type: AnswerDto })
  @ApiResponse({ status: 404, description: 'No such conversation for this caller.', type: ProblemDto })
  @ApiResponse({ status: 409, description: 'Another prompt holds the conversation.', type: ProblemDto })
  @ApiResponse({ status: 502, description: 'The model provider refused the request.', type: ProblemDto })
  @ApiResponse({
    status: 503,
    description: 'The model provider or the conversation store is unavailable.',
    type: ProblemDto,
  })
  async message(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Param('id', conversationId) id: string,
    @Body() body: PostMessageDto,
  ): Promise<ConverseAnswer> {
    const gone = new AbortController();
    // The client went away before the answer: the turn is cancelled and nothing of it is kept.
    const onClose = (): void => {
      if (!reply.raw.writableEnded) gone.abort();
    };
    reply.raw.once('close', onClose);
    try {
      return await this.agent.service.converse(
        {
          principal: principalOf(request),
          sandbox: await this.runtime.sandboxes.for(principalOf(request)),
          signal: gone.signal,
          logger: this.runtime.logger.child({ reqId: request.id }),
          requestId: request.id,
        },
        { prompt: body.prompt, conversationId: id },
      );
    } finally {
      reply.raw.off('close', onClose);
    }
  }

  @Get()
  @ApiOperation({ summary: "The caller's conversations, newest first" })
  @ApiOkResponse({ type: ConversationPageDto })
  async list(
    @Req() request: FastifyRequest,
    @Query() query: ListConversationsQuery,
  ): Promise<{ items: ConversationMeta[]; next_cursor?: string }> {
    const page: Page<ConversationMeta> = await this.agent.conversations.list(
      principalOf(request),
      query.limit ?? DEFAULT_PAGE_SIZE,
      query.cursor,
    );
    return { items: page.items, ...(page.nextCursor && { next_cursor: page.nextCursor }) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'A conversation and its turns' })
  @ApiOkResponse({ type: ConversationHistoryDto })
  @ApiResponse({ status: 404, description: 'No such conversation for this caller.', type: ProblemDto })
  history(
    @Req() request: FastifyRequest,
    @Param('id', conversationId) id: string,
  ): Promise<ConversationHistory> {
    return this.agent.conversations.history(principalOf(request), id);
  }

  @Get(':id/export')
  @ApiOperation({
    summary: 'Everything stored about a conversation, as one JSON document (data-subject requests)',
  })
  @ApiOkResponse({ description: 'The export, as an attachment.' })
  @ApiResponse({ status: 404, description: 'No such conversation for this caller.', type: ProblemDto })
  async export(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Param('id', conversationId) id: string,
  ): Promise<ConversationExport> {
    const document = await this.agent.conversations.export(principalOf(request), id, request.id);
    void reply.header('content-disposition', `attachment; filename="conversation-${id}.json"`);
    return document;
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Erase a conversation now (an audit record without content is kept)' })
  @ApiNoContentResponse({ description: 'Erased.' })
  @ApiResponse({ status: 404, description: 'No such conversation for this caller.', type: ProblemDto })
  async erase(@Req() request: FastifyRequest, @Param('id', conversationId) id: string): Promise<void> {
    await this.agent.conversations.erase(principalOf(request), id, request.id);
  }

  private get agent(): NonNullable<Runtime['agent']> {
    // The controller is mounted only when the agent is enabled.
    return this.runtime.agent as NonNullable<Runtime['agent']>;
  }
}
