import { BastionError } from '../common/bastion-error.js';

/** No such conversation for this caller: absent, expired, or someone else's (never told apart). */
export class ConversationNotFound extends BastionError {
  constructor() {
    super('conversation_not_found', 'No such conversation.');
  }
}

/** Another turn on the conversation held it longer than a caller may wait. */
export class ConversationBusy extends BastionError {
  constructor() {
    super('conversation_busy', 'The conversation is busy with another prompt; try again shortly.');
  }
}

/**
 * Redis (or whatever holds the conversations) did not answer. The cause is kept for the logs; the message
 * never carries it, since a connection error can name hosts.
 */
export class ConversationStoreUnavailable extends BastionError {
  constructor(options?: { cause?: unknown }) {
    super('conversation_store_unavailable', 'The conversation store is unavailable; retry shortly.');
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
