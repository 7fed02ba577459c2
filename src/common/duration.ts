/** A duration for people: `250 ms`, `1s`, `1.5s`. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10}s`;
}
