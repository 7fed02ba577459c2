/**
 * The promise's outcome, or the signal's reason as soon as it aborts: for work that cannot be interrupted
 * (a backoff sleep), so the caller is answered at once while the work winds down on its own.
 */
export function settleOnAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
