/**
 * Jest's fake timers for code that also does real I/O (HTTP to a local server, a child process, Redis):
 * setTimeout, setInterval, Date and performance are faked, so Bastion's timeouts, backoffs and breaker
 * pauses run only when a test advances the clock; nextTick, setImmediate and queueMicrotask stay real, so
 * sockets and promise chains run as usual. Only globals are faked: what imports node:timers keeps real time.
 *
 *   useFakeClock();
 *   const call = track(provider.complete(request, signal));
 *   await fake.until(() => fake.requests.length === 1); // real I/O: the attempt is at the server
 *   await jest.advanceTimersByTimeAsync(149);
 *   expect(call.settled).toBe(false);
 */
import { setTimeout as realSleep } from 'node:timers/promises';
import { jest } from '@jest/globals';

export function useFakeClock(): void {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
}

/** A promise with whether it has settled yet, to check "not yet" without waiting. */
export interface Tracked<T> {
  readonly settled: boolean;
  readonly promise: Promise<T>;
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked = { settled: false, promise };
  promise.then(
    () => (tracked.settled = true),
    () => (tracked.settled = true),
  );
  return tracked;
}

/**
 * Polls, on the real clock, until `probe` holds: for what real I/O brings about (a socket closing, a process
 * starting) while the clock is fake. Bounded by `timeoutMs` of real time.
 */
export async function untilReal(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  for (let waited = 0; !(await probe()); waited += 5) {
    if (waited > timeoutMs) throw new Error(`Timed out after ${timeoutMs} ms waiting until ${what}.`);
    await realSleep(5);
  }
}

/**
 * Moves the fake clock `stepMs` at a time, letting real I/O run between steps, until `probe` holds; fails once
 * `maxMs` of fake time have passed. For waits whose exact length is Bastion's policy (a backoff with jitter,
 * a health check's schedule) when what the test asserts is what happens after them. Returns the fake ms moved.
 */
export async function advanceUntil(
  what: string,
  probe: () => boolean | Promise<boolean>,
  { stepMs = 50, maxMs = 10_000 }: { stepMs?: number; maxMs?: number } = {},
): Promise<number> {
  let moved = 0;
  while (!(await probe())) {
    if (moved >= maxMs) throw new Error(`Not ${what} after ${maxMs} ms of fake time.`);
    await jest.advanceTimersByTimeAsync(stepMs);
    moved += stepMs;
    await realSleep(5);
  }
  return moved;
}
