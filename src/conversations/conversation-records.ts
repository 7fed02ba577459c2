import { BastionError } from '../common/bastion-error.js';
import type { NewTurn } from './conversation.js';

/** Exactly the fields of a turn, with `at` normalized, so whatever else a caller's object carries is not stored. */
export function wholeTurn(turn: NewTurn): NewTurn {
  const at = Date.parse(turn.at);
  if (Number.isNaN(at)) throw new TypeError('A turn\'s "at" must be an ISO 8601 date.');
  const { inputTokens, outputTokens, modelCalls } = turn.usage;
  return {
    prompt: turn.prompt,
    answer: turn.answer,
    steps: turn.steps.map(({ tool, outcome, summary }) => ({ tool, outcome, summary })),
    usage: { inputTokens, outputTokens, modelCalls },
    provider: turn.provider,
    model: turn.model,
    at: new Date(at).toISOString(),
  };
}

const CURSOR = /^(\d{1,15}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** Keyset position after the last item of a page (its creation time and id), opaque to the caller; both stores use it. */
export function encodeCursor(createdAt: number, id: string): string {
  return Buffer.from(`${createdAt}:${id}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: number; id: string } {
  const match = CURSOR.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  // Re-encoding rejects strings Node's lenient base64 decoder would half-accept.
  if (!match?.[1] || !match[2] || encodeCursor(Number(match[1]), match[2]) !== cursor) {
    throw new BastionError('invalid_cursor', 'The cursor is not one this server issued.');
  }
  return { createdAt: Number(match[1]), id: match[2] };
}
