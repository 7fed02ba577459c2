/**
 * The in-process turn queue's waits, on Jest's fake clock: a waiter gives up exactly at waitMs or the moment
 * its signal aborts, and the line behind it never sticks. Arrival order is in the store contract suite.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { ConversationBusy } from './conversation.errors.js';
import { TurnQueue, type ReleaseTurn } from './turn-queue.js';

/** Whether a promise has settled yet, without waiting for it. */
function track<T>(promise: Promise<T>): { readonly settled: boolean; promise: Promise<T> } {
  const tracked = { settled: false, promise };
  promise.then(
    () => (tracked.settled = true),
    () => (tracked.settled = true),
  );
  return tracked;
}

beforeEach(() => {
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

describe('TurnQueue', () => {
  it('gives up with ConversationBusy exactly waitMs after arriving, and passes the turn on when its own comes', async () => {
    const queue = new TurnQueue();
    const release = await queue.acquire('key', { waitMs: 0 });
    const impatient = track(queue.acquire('key', { waitMs: 1_000 }));
    const patient = track(queue.acquire('key', { waitMs: 60_000 }));
    await jest.advanceTimersByTimeAsync(999);
    expect(impatient.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(impatient.settled).toBe(true);
    await expect(impatient.promise).rejects.toBeInstanceOf(ConversationBusy);
    expect(patient.settled).toBe(false);
    release();
    await jest.advanceTimersByTimeAsync(0);
    expect(patient.settled).toBe(true);
    (await patient.promise)();
    expect(queue.size).toBe(0);
  });

  it('stops waiting the moment the signal aborts, with its reason, and never takes the turn', async () => {
    const queue = new TurnQueue();
    const release = await queue.acquire('key', { waitMs: 0 });
    const controller = new AbortController();
    const reason = new Error('client went away');
    const waiting = track(queue.acquire('key', { waitMs: 60_000, signal: controller.signal }));
    const behind = track(queue.acquire('key', { waitMs: 60_000 }));
    await jest.advanceTimersByTimeAsync(5_000);
    expect(waiting.settled).toBe(false);
    controller.abort(reason);
    await jest.advanceTimersByTimeAsync(0);
    expect(waiting.settled).toBe(true);
    await expect(waiting.promise).rejects.toBe(reason);
    await expect(queue.acquire('key', { waitMs: 60_000, signal: controller.signal })).rejects.toBe(reason);
    release();
    await jest.advanceTimersByTimeAsync(0);
    expect(behind.settled).toBe(true);
    const next: ReleaseTurn = await behind.promise;
    next();
    expect(queue.size).toBe(0);
  });
});
