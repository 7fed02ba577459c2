import { ApiProperty, ApiPropertyOptional } from '../http/api-docs.js';
import { Type } from 'class-transformer';
import { IsBoolean, IsInt, IsNotEmpty, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { MAX_PAGE_SIZE } from './conversation.service.js';

/** The prompt limit is configurable; this is only the ceiling the DTO enforces before the agent's own check. */
const PROMPT_CEILING = 1_000_000;

export class CreateConversationDto {
  @ApiPropertyOptional({ description: 'The agent may read but never change files in this conversation.' })
  @IsOptional()
  @IsBoolean()
  read_only?: boolean;
}

export class PostMessageDto {
  @ApiProperty({ description: 'What you would like done or answered.', example: 'List the files in docs' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(PROMPT_CEILING)
  prompt!: string;
}

export class ListConversationsQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: MAX_PAGE_SIZE, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  limit?: number;

  @ApiPropertyOptional({ description: 'next_cursor from the previous page.' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  cursor?: string;
}

export class StepDto {
  @ApiProperty() tool!: string;
  @ApiProperty({ enum: ['ok', 'refused', 'error'] }) outcome!: string;
  @ApiProperty() summary!: string;
}

export class UsageDto {
  @ApiProperty() input_tokens!: number;
  @ApiProperty() output_tokens!: number;
  @ApiProperty() model_calls!: number;
  @ApiProperty() provider!: string;
  @ApiProperty() model!: string;
}

export class AnswerDto {
  @ApiProperty({ format: 'uuid' }) conversation_id!: string;
  @ApiProperty() answer!: string;
  @ApiProperty({ type: [StepDto] }) steps!: StepDto[];
  @ApiProperty({ type: UsageDto }) usage!: UsageDto;
}

export class ConversationDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() readOnly!: boolean;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
  @ApiProperty({ format: 'date-time', description: 'The conversation is erased after this.' })
  expiresAt!: string;
  @ApiProperty() turnCount!: number;
}

export class ConversationPageDto {
  @ApiProperty({ type: [ConversationDto] }) items!: ConversationDto[];
  @ApiPropertyOptional() next_cursor?: string;
}

export class TurnDto {
  @ApiProperty() seq!: number;
  @ApiProperty() prompt!: string;
  @ApiProperty() answer!: string;
  @ApiProperty({ type: [StepDto] }) steps!: StepDto[];
  @ApiProperty() provider!: string;
  @ApiProperty() model!: string;
  @ApiProperty({ format: 'date-time' }) at!: string;
}

export class ConversationHistoryDto extends ConversationDto {
  @ApiProperty({ type: [TurnDto] }) turns!: TurnDto[];
}

export class ProblemDto {
  @ApiProperty({ example: 'about:blank' }) type!: string;
  @ApiProperty({ example: 'Not Found' }) title!: string;
  @ApiProperty({ example: 404 }) status!: number;
  @ApiProperty({ example: 'No such conversation.' }) detail!: string;
  @ApiProperty({ example: 'conversation_not_found' }) code!: string;
}
