import { setImmediate as nextTurn } from 'node:timers/promises';

const SLICE_MS = 10;

/**
 * Small reads are synchronous (open-file.ts), so a loop over thousands of files would hold the event loop
 * for its whole run: no other request, progress message or cancellation would get through. A long loop
 * calls take() per item, which gives the event loop a turn once every 10 ms of work.
 */
export class LoopTurns {
  private since = performance.now();

  async take(): Promise<void> {
    if (performance.now() - this.since < SLICE_MS) return;
    await nextTurn();
    this.since = performance.now();
  }
}
