import type { ConversationMeta, NewTurn, Page, Turn } from './conversation.js';

export interface CreateConversation {
  owner: string;
  readOnly?: boolean;
}

export interface TurnLockOptions {
  /** How long to wait for the turn in progress to finish before giving up with ConversationBusy. */
  waitMs: number;
  /** Stops waiting (and rejects with the signal's reason) when aborted. */
  signal?: AbortSignal;
}

/**
 * Where conversations live: SQLite on one machine, Redis for several. Every read and write names the
 * owner, and a conversation owned by someone else is answered exactly like one that does not exist.
 * Expired conversations are never returned, whether or not they have been purged yet.
 */
export interface ConversationStore {
  readonly kind: 'sqlite' | 'redis';
  create(input: CreateConversation): Promise<ConversationMeta>;
  /** The conversation, or undefined when it does not exist, has expired or belongs to someone else. */
  get(id: string, owner: string): Promise<ConversationMeta | undefined>;
  /** The owner's conversations, most recently created first. */
  list(owner: string, page: { limit: number; cursor?: string }): Promise<Page<ConversationMeta>>;
  /** The turns in order, or undefined when get() would be undefined. */
  turns(id: string, owner: string): Promise<Turn[] | undefined>;
  /**
   * Appends one whole turn (all of it or nothing), numbered after the last, and slides the expiry.
   * Returns undefined when the conversation is gone (deleted or expired meanwhile).
   */
  appendTurn(id: string, owner: string, turn: NewTurn): Promise<Turn | undefined>;
  /** Erases the conversation and its turns at once; false when get() would be undefined. */
  delete(id: string, owner: string): Promise<boolean>;
  /**
   * Runs fn while holding the conversation's turn lock, so turns on one conversation never interleave:
   * within this process, and across processes for a shared store. The lock is released when fn settles.
   */
  withTurnLock<T>(id: string, options: TurnLockOptions, fn: () => Promise<T>): Promise<T>;
  /** Deletes every conversation expired before now; returns how many. */
  purgeExpired(now?: Date): Promise<number>;
  /** Throws when the store cannot answer (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
