import type { Turn } from '../conversations/conversation.js';
import type { ModelMessage } from './model-provider.js';

export interface HistoryWindow {
  messages: ModelMessage[];
  /** Earlier turns left out to stay within the bounds. */
  dropped: number;
}

/** A rough token count (about four characters a token for English and code): enough to bound a budget. */
export function approximateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * The most recent turns that fit both bounds, oldest first, as prompt/answer pairs. Tool calls of earlier
 * turns are not replayed: the model sees what was asked and answered, and reads files again if it needs to.
 */
export function historyWindow(
  turns: readonly Turn[],
  bounds: { turns: number; tokens: number },
): HistoryWindow {
  const kept: Turn[] = [];
  let tokens = 0;
  for (let i = turns.length - 1; i >= 0 && kept.length < bounds.turns; i--) {
    const turn = turns[i] as Turn;
    const cost = approximateTokens(turn.prompt) + approximateTokens(turn.answer);
    if (tokens + cost > bounds.tokens) break;
    tokens += cost;
    kept.push(turn);
  }
  kept.reverse();
  const messages: ModelMessage[] = kept.flatMap((turn) => [
    { role: 'user' as const, text: turn.prompt },
    { role: 'assistant' as const, text: turn.answer, calls: [] },
  ]);
  return { messages, dropped: turns.length - kept.length };
}
