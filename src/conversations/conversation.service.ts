import type { Principal } from '../auth/principal.js';
import { BastionError } from '../common/bastion-error.js';
import type { AuditSink } from '../observability/audit-log.js';
import type { ConversationMeta, Page, Turn } from './conversation.js';
import { ConversationNotFound } from './conversation.errors.js';
import type { ConversationStore } from './conversation.store.js';

export const MAX_PAGE_SIZE = 100;

/** A conversation with its turns, as GET /v1/conversations/{id} and the export return it. */
export interface ConversationHistory extends ConversationMeta {
  turns: Turn[];
}

/** The export for a data-subject request: everything stored about the conversation, in one document. */
export interface ConversationExport {
  format: 'bastion.conversation.v1';
  exportedAt: string;
  conversation: ConversationHistory;
}

/**
 * Reading and erasing a caller's conversations. Everything is scoped to the owner: someone else's
 * conversation is answered exactly as a missing one. Exports and erasures are audited, without content.
 */
export class ConversationService {
  constructor(
    private readonly store: ConversationStore,
    private readonly audit: AuditSink,
  ) {}

  list(principal: Principal, limit: number, cursor?: string): Promise<Page<ConversationMeta>> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE)
      throw new BastionError('invalid_limit', `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}.`);
    return this.store.list(principal.id, { limit, ...(cursor !== undefined && { cursor }) });
  }

  async history(principal: Principal, id: string): Promise<ConversationHistory> {
    const [conversation, turns] = await Promise.all([
      this.store.get(id, principal.id),
      this.store.turns(id, principal.id),
    ]);
    if (!conversation || !turns) throw new ConversationNotFound();
    return { ...conversation, turns };
  }

  async export(principal: Principal, id: string, requestId: string): Promise<ConversationExport> {
    const conversation = await this.history(principal, id);
    this.record(principal, 'conversation.export', id, requestId);
    return { format: 'bastion.conversation.v1', exportedAt: new Date().toISOString(), conversation };
  }

  /** Erasure: the conversation and its turns leave the store at once; the audit log keeps only that it happened. */
  async erase(principal: Principal, id: string, requestId: string): Promise<void> {
    if (!(await this.store.delete(id, principal.id))) throw new ConversationNotFound();
    this.record(principal, 'conversation.delete', id, requestId);
  }

  private record(principal: Principal, action: string, id: string, requestId: string): void {
    this.audit.record({
      kind: 'conversation',
      actor: principal.id,
      action,
      target: id,
      outcome: 'ok',
      requestId,
    });
  }
}
