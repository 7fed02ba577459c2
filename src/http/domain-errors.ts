import type { BadRequestException } from '@nestjs/common';
import { InvalidPrompt } from '../agent/agent.service.js';
import { ProviderError, type ProviderErrorCode } from '../agent/providers/provider.errors.js';
import { TurnCancelled } from '../agent/secure-agent.js';
import { KeyStoreUnavailable } from '../auth/key-store.redis.js';
import { BastionError } from '../common/bastion-error.js';
import {
  ConversationBusy,
  ConversationNotFound,
  ConversationStoreUnavailable,
} from '../conversations/conversation.errors.js';

/** An HTTP answer to an error: status, Bastion's code, a message safe to show, extra headers. */
export interface Answer {
  status: number;
  message: string;
  code: string;
  headers?: Record<string, string>;
}

/** A model provider's failure, as the caller of a turn sees it: the model is upstream of this server. */
const PROVIDER_STATUS: Record<ProviderErrorCode, number> = {
  provider_auth: 502,
  provider_bad_request: 502,
  context_too_long: 422,
  provider_rate_limited: 503,
  provider_unavailable: 503,
  provider_timeout: 504,
  provider_circuit_open: 503,
};

/** Bad input codes raised by services (cursor, limit) rather than by DTO validation. */
const BAD_INPUT = new Set(['invalid_cursor', 'invalid_limit']);

/** The HTTP status of the agent's and the conversations' errors; undefined for anything else. */
export function domainAnswer(error: unknown): Answer | undefined {
  if (!(error instanceof BastionError)) return undefined;
  const { code, message } = error;
  if (error instanceof ConversationNotFound) return { status: 404, code, message };
  if (error instanceof ConversationBusy)
    return { status: 409, code, message, headers: { 'retry-after': '5' } };
  if (error instanceof ConversationStoreUnavailable)
    return { status: 503, code, message, headers: { 'retry-after': '5' } };
  if (error instanceof KeyStoreUnavailable)
    return { status: 503, code, message, headers: { 'retry-after': '1' } };
  if (error instanceof InvalidPrompt || BAD_INPUT.has(code)) return { status: 400, code, message };
  // 499: the client closed the request (nginx's convention); there is nobody left to read it.
  if (error instanceof TurnCancelled) return { status: 499, code, message };
  if (error instanceof ProviderError) {
    const retryAfterSec = Math.ceil((error.details.retryAfterMs ?? 0) / 1000);
    return {
      status: PROVIDER_STATUS[error.code],
      code,
      message,
      ...(retryAfterSec > 0 && { headers: { 'retry-after': String(retryAfterSec) } }),
    };
  }
  return undefined;
}

/** A DTO that failed validation: class-validator's messages name the fields, never echo their values. */
export function validationAnswer(error: BadRequestException): Answer {
  const response = error.getResponse() as { message?: unknown };
  const messages = Array.isArray(response.message) ? response.message : [response.message];
  const detail = messages.filter((m): m is string => typeof m === 'string').join('; ');
  return { status: 400, code: 'invalid_request', message: detail || 'Bad request.' };
}
