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
