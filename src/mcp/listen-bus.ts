import { AsyncLocalStorage } from 'node:async_hooks';
import type { ServerEvent, ServerEventBus } from '@modelcontextprotocol/server';

type Listener = (event: ServerEvent) => void;

/** One subscriptions/listen stream, as the bus knows it: the listener the SDK registered for it. */
export class ListenStream {
  readonly listeners = new Set<Listener>();
}

/**
 * The event bus behind 2026-07-28 subscriptions/listen streams. List changes (tools come and go) go to every
 * stream; a resource update goes only to the stream whose own subscription, which passed the door, watches
 * that file. So a change is never told to a listener in another workspace, or to one without files:read,
 * even when both name the same workspace:/// URI.
 */
export class ListenBus implements ServerEventBus {
  private readonly opening = new AsyncLocalStorage<ListenStream>();
  private readonly all = new Set<Listener>();

  /** Runs `open` (the SDK serving a listen request) so that the listener it registers belongs to `stream`. */
  opened<T>(stream: ListenStream, open: () => T): T {
    return this.opening.run(stream, open);
  }

  subscribe(listener: Listener): () => void {
    const stream = this.opening.getStore();
    this.all.add(listener);
    stream?.listeners.add(listener);
    return () => {
      this.all.delete(listener);
      stream?.listeners.delete(listener);
    };
  }

  /** A change for everyone listening. A resource update has an audience of its own: see deliver(). */
  publish(event: ServerEvent): void {
    if (event.kind === 'resource_updated') return;
    tell(this.all, event);
  }

  /** A resource update for one stream. */
  deliver(stream: ListenStream, event: ServerEvent): void {
    tell(stream.listeners, event);
  }
}

function tell(listeners: ReadonlySet<Listener>, event: ServerEvent): void {
  for (const listener of [...listeners]) {
    try {
      listener(event);
    } catch {
      // one stream's failure must not stop the others
    }
  }
}
