import { formatMs } from '../../common/duration.js';
import { settleOnAbort } from '../../common/settle-on-abort.js';
import { circuitStateName as stateName, type CircuitStateName } from '../../common/circuit-state.js';
import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  DelegateBackoff,
  TimeoutStrategy,
  circuitBreaker,
  handleWhen,
  retry,
  timeout,
  type CircuitBreakerPolicy,
  type IRetryBackoffContext,
  type RetryPolicy,
  type TimeoutPolicy,
} from 'cockatiel';
import type { ModelProvider, ModelReply, ModelRequest } from '../model-provider.js';
import { ProviderError } from './provider.errors.js';

/** The `agent.resilience` settings. */
export interface ResilienceOptions {
  /** Per attempt, not per call. */
  timeoutMs: number;
  /** Retries after the first attempt. */
  retries: number;
  retryBaseMs: number;
  /** The longest wait between attempts, Retry-After included. */
  retryMaxMs: number;
  /** Consecutive failed attempts that open the circuit. */
  breakerFailures: number;
  breakerHalfOpenMs: number;
}

export interface ResilienceHooks {
  /** Before waiting `delayMs` to make retry number `attempt` (1-based). */
  onRetry?(error: ProviderError, attempt: number, delayMs: number): void;
  onCircuit?(state: CircuitStateName): void;
}

const isRetryable = (error: Error) => error instanceof ProviderError && error.retryable;

/**
 * Wraps a provider in cockatiel policies: retry → circuit breaker → per-attempt timeout → provider.
 *
 * Every attempt counts to the breaker (the breaker sits inside the retry), as in Polly's recommended order:
 * the breaker measures the provider's health, not our callers' patience, so a provider failing every request
 * opens the circuit after `breakerFailures` requests rather than `breakerFailures × (retries + 1)`, and a
 * circuit that opens mid-call ends that call's retries at once (`provider_circuit_open` is not retryable).
 * Only retryable failures (429, 5xx/529, connection, timeout) count; a refused key or a bad request says
 * nothing about the provider's health and must not pause it for everyone.
 */
export class ResilientProvider implements ModelProvider {
  readonly name: string;
  private readonly retryPolicy: RetryPolicy;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly timeoutPolicy: TimeoutPolicy;
  private openedAt = 0;

  constructor(
    private readonly inner: ModelProvider,
    private readonly options: ResilienceOptions,
    hooks: ResilienceHooks = {},
  ) {
    this.name = inner.name;
    this.timeoutPolicy = timeout(options.timeoutMs, TimeoutStrategy.Cooperative);
    this.breaker = circuitBreaker(handleWhen(isRetryable), {
      halfOpenAfter: options.breakerHalfOpenMs,
      breaker: new ConsecutiveBreaker(options.breakerFailures),
    });
    this.retryPolicy = retry(handleWhen(isRetryable), {
      maxAttempts: options.retries,
      backoff: new DelegateBackoff((context: IRetryBackoffContext<unknown>) => this.backoff(context)),
    });

    this.breaker.onBreak(() => (this.openedAt = Date.now()));
    this.breaker.onStateChange((state) => {
      const name = stateName(state);
      if (name) hooks.onCircuit?.(name);
    });
    this.retryPolicy.onRetry((event) => {
      if ('error' in event && event.error instanceof ProviderError)
        hooks.onRetry?.(event.error, event.attempt, event.delay);
    });
  }

  /** The breaker's state; it stays `open` until the first call after `breakerHalfOpenMs` tries again. */
  circuitState(): CircuitStateName {
    return stateName(this.breaker.state) ?? 'open';
  }

  complete(request: ModelRequest, signal: AbortSignal): Promise<ModelReply> {
    if (signal.aborted) return Promise.reject(signal.reason);
    const run = this.retryPolicy.execute(() => this.attempt(request, signal), signal);
    // cockatiel's backoff sleep cannot be interrupted: settle on the caller's abort now, and let the attempt
    // scheduled after the sleep see the aborted signal and end without calling the provider.
    return settleOnAbort(run, signal);
  }

  private async attempt(request: ModelRequest, signal: AbortSignal): Promise<ModelReply> {
    signal.throwIfAborted();
    try {
      // The caller's signal comes from the closure: a half-open breaker re-executes without passing it on.
      return await this.breaker.execute(() => this.timed(request, signal), signal);
    } catch (error) {
      if (error instanceof BrokenCircuitError) throw this.circuitOpenError();
      throw error;
    }
  }

  private timed(request: ModelRequest, signal: AbortSignal): Promise<ModelReply> {
    return this.timeoutPolicy.execute(async ({ signal: attemptSignal }) => {
      try {
        return await this.inner.complete(request, attemptSignal);
      } catch (error) {
        // The attempt signal aborts for two reasons: the caller cancelled (their reason goes back unchanged)
        // or the per-attempt timeout fired (a retryable provider_timeout).
        if (signal.aborted) throw signal.reason;
        if (attemptSignal.aborted) throw this.timeoutError();
        throw error;
      }
    }, signal);
  }

  /** Retry-After when the provider sent one, else exponential from retryBaseMs with jitter; both capped. */
  private backoff(context: IRetryBackoffContext<unknown>): number {
    const { retryBaseMs, retryMaxMs } = this.options;
    const error = 'error' in context.result ? context.result.error : undefined;
    const asked = error instanceof ProviderError ? error.details.retryAfterMs : undefined;
    if (asked !== undefined) return Math.min(asked, retryMaxMs);
    const ceiling = Math.min(retryMaxMs, retryBaseMs * 2 ** (context.attempt - 1));
    // "Equal jitter": at least half the step, so retries from many callers spread without becoming instant.
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  private timeoutError(): ProviderError {
    return new ProviderError(
      'provider_timeout',
      `The ${this.name} API did not answer within ${formatMs(this.options.timeoutMs)}.`,
      { provider: this.name },
    );
  }

  private circuitOpenError(): ProviderError {
    const remaining = Math.max(0, this.openedAt + this.options.breakerHalfOpenMs - Date.now());
    return new ProviderError(
      'provider_circuit_open',
      `The ${this.name} provider is failing; requests are paused for ${Math.max(1, Math.ceil(remaining / 1000))}s.`,
      { provider: this.name, retryAfterMs: remaining },
    );
  }
}
