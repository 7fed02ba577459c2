import { CircuitState } from 'cockatiel';

export type CircuitStateName = 'closed' | 'open' | 'half-open';

/** A cockatiel breaker's state by name; undefined for Isolated (held open by hand, which Bastion never does). */
export function circuitStateName(state: CircuitState): CircuitStateName | undefined {
  switch (state) {
    case CircuitState.Closed:
      return 'closed';
    case CircuitState.Open:
      return 'open';
    case CircuitState.HalfOpen:
      return 'half-open';
    default:
      return undefined;
  }
}
