import { describe, expect, it } from '@jest/globals';
import type { Turn } from '../conversations/conversation.js';
import { historyWindow } from './history-window.js';

const turn = (seq: number, size = 40): Turn => ({
  seq,
  prompt: `prompt ${seq} `.padEnd(size, '.'),
  answer: `answer ${seq} `.padEnd(size, '.'),
  steps: [],
  usage: { inputTokens: 0, outputTokens: 0, modelCalls: 1 },
  provider: 'rules',
  model: 'rules',
  at: new Date(0).toISOString(),
});

describe('historyWindow', () => {
  it('gives every turn, oldest first, as prompt/answer pairs when they fit', () => {
    const window = historyWindow([turn(1), turn(2)], { turns: 10, tokens: 1_000 });
    expect(window.dropped).toBe(0);
    expect(window.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(window.messages[0]).toEqual({ role: 'user', text: turn(1).prompt });
  });

  it('keeps only the most recent turns beyond the turn bound', () => {
    const window = historyWindow(
      [1, 2, 3, 4, 5].map((n) => turn(n)),
      { turns: 2, tokens: 1_000 },
    );
    expect(window.dropped).toBe(3);
    expect(window.messages[0]).toEqual({ role: 'user', text: turn(4).prompt });
  });

  it('drops older turns beyond the approximate token budget (about four characters a token)', () => {
    // Each turn is 80 characters, about 20 tokens.
    const window = historyWindow(
      [1, 2, 3].map((n) => turn(n)),
      { turns: 10, tokens: 45 },
    );
    expect(window.dropped).toBe(1);
    expect(window.messages).toHaveLength(4);
  });

  it('gives nothing when even the last turn is over the budget', () => {
    const window = historyWindow([turn(1, 400)], { turns: 10, tokens: 10 });
    expect(window).toEqual({ messages: [], dropped: 1 });
  });
});
