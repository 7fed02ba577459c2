import type { Logger } from 'pino';
import type { DoorEvent, ToolRegistry } from '../tools/tool-registry.js';
import type { AuditSink } from './audit-log.js';
import type { Metrics } from './metrics.js';

const MAX_ACTION_CHARS = 100;

/**
 * Every passage through the door lands in the metrics and the audit log, once; refusals are also logged.
 * Metric labels take registered names only: a name a client typed for an unknown tool becomes `other`.
 */
export function observeCalls(
  registry: ToolRegistry,
  sinks: { metrics: Metrics; audit: AuditSink; logger: Logger },
): void {
  const { metrics, audit, logger } = sinks;
  registry.observe((event) => {
    count(metrics, event, registry);
    audit.record({
      kind: event.kind === 'tool' ? 'tool_call' : 'operation',
      actor: event.principal.id,
      action: actionOf(event),
      outcome: event.outcome,
      requestId: event.requestId,
      ...(event.target !== undefined && { target: event.target }),
      ...(event.code !== undefined && { code: event.code }),
    });
    if (event.outcome === 'ok') return;
    const what = event.kind === 'tool' ? { tool: actionOf(event) } : { operation: actionOf(event) };
    const { outcome, code, requestId: reqId } = event;
    logger.info(
      { ...what, outcome, code, reqId },
      `${event.kind === 'tool' ? 'tool call' : 'operation'} refused`,
    );
  });
}

function count(metrics: Metrics, event: DoorEvent, registry: ToolRegistry): void {
  const seconds = event.durationMs / 1000;
  if (event.kind === 'tool') {
    const labels = { tool: registry.has(event.name) ? event.name : 'other', outcome: event.outcome };
    metrics.toolCalls.inc(labels);
    metrics.toolDuration.observe(labels, seconds);
  } else {
    const operation = event.kind === 'prompt' ? 'prompts/get' : event.name;
    const labels = { operation, outcome: event.outcome };
    metrics.operations.inc(labels);
    metrics.operationDuration.observe(labels, seconds);
  }
  if (event.outcome === 'refused') metrics.sandboxRefusals.inc({ reason: event.code ?? 'refused' });
}

/** The audit action: the tool name, `prompts/get <prompt>`, or the operation's method. */
function actionOf(event: DoorEvent): string {
  const name = event.name.slice(0, MAX_ACTION_CHARS);
  return event.kind === 'prompt' ? `prompts/get ${name}` : name;
}
