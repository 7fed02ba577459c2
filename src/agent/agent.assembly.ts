import type { Logger } from 'pino';
import type { BastionConfig } from '../config/config.schema.js';
import { ConversationService } from '../conversations/conversation.service.js';
import type { ConversationStore } from '../conversations/conversation.store.js';
import type { AuditSink } from '../observability/audit-log.js';
import type { Metrics } from '../observability/metrics.js';
import type { ToolRegistry } from '../tools/tool-registry.js';
import { AgentService } from './agent.service.js';
import { converseTool } from './converse.tool.js';
import { ModelRouter } from './model-router.js';
import { SecureAgent } from './secure-agent.js';
import { Supervisor } from './supervisor.js';

/** The SecureAgent and what serves it, as the runtime holds them. */
export interface AgentParts {
  service: AgentService;
  conversations: ConversationService;
  router: ModelRouter;
  store: ConversationStore;
}

interface Sinks {
  metrics: Metrics;
  audit: AuditSink;
  logger: Logger;
}

/**
 * Builds the agent on the registry it works through, and registers `converse` in that same registry, so a
 * prompt over MCP, REST or stdio and every step the agent takes go through the one door.
 */
export function assembleAgent(
  config: BastionConfig,
  registry: ToolRegistry,
  store: ConversationStore,
  sinks: Sinks,
): AgentParts {
  const { agent: settings } = config;
  const router = new ModelRouter(settings, providerHooks(sinks));
  const supervisor = new Supervisor(registry, settings.limits);
  observeDecisions(supervisor, sinks);
  const agent = new SecureAgent(registry, supervisor, router, settings.limits, settings.maxOutputTokens);
  const service = new AgentService(
    agent,
    store,
    {
      maxPromptChars: settings.limits.maxPromptChars,
      workspaceReadOnly: config.workspace.readOnly,
      lockWaitMs: config.conversations.lockWaitMs,
    },
    sinks,
  );
  registry.register(converseTool(service, settings.limits.maxPromptChars));
  return { service, conversations: new ConversationService(store, sinks.audit), router, store };
}

/** Every Supervisor decision is counted and audited (tool names and reasons only). */
function observeDecisions(supervisor: Supervisor, { metrics, audit }: Sinks): void {
  supervisor.observe(({ principal, conversationId, requestId, tool, decision }) => {
    const reason = decision.allow ? 'none' : decision.reason;
    metrics.agentSteps.inc({ decision: decision.allow ? 'allow' : 'refuse', reason });
    audit.record({
      kind: 'agent_step',
      actor: principal.id,
      action: tool,
      target: conversationId,
      outcome: decision.allow ? 'allowed' : 'refused',
      requestId,
      ...(!decision.allow && { code: reason }),
    });
  });
}

function providerHooks({ metrics, logger }: Sinks) {
  return {
    onRetry(provider: string, error: { code: string }, attempt: number, delayMs: number) {
      metrics.modelRetries.inc({ provider, code: error.code });
      logger.warn({ provider, code: error.code, attempt, delayMs }, 'model request retried');
    },
    onCircuit(provider: string, state: string) {
      metrics.circuitOpen.set({ provider }, state === 'open' ? 1 : 0);
      logger.warn({ provider, state }, 'model provider circuit changed');
    },
  };
}
