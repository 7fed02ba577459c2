import type { Logger } from 'pino';
import type { ToolRegistry } from '../tools/tool-registry.js';
import type { AuditSink } from './audit-log.js';
import type { Metrics } from './metrics.js';

/** Every call through the door lands in the metrics and the audit log; refusals are also logged. */
export function observeCalls(
  registry: ToolRegistry,
  sinks: { metrics: Metrics; audit: AuditSink; logger: Logger },
): void {
  const { metrics, audit, logger } = sinks;
  registry.observe((event) => {
    const labels = { tool: event.tool, outcome: event.outcome };
    metrics.toolCalls.inc(labels);
    metrics.toolDuration.observe(labels, event.durationMs / 1000);
    if (event.outcome === 'refused') metrics.sandboxRefusals.inc({ reason: event.code ?? 'refused' });
    audit.record({
      kind: 'tool_call',
      actor: event.principal.id,
      action: event.tool,
      outcome: event.outcome,
      requestId: event.requestId,
      ...(event.target !== undefined && { target: event.target }),
      ...(event.code !== undefined && { code: event.code }),
    });
    if (event.outcome !== 'ok')
      logger.info(
        { tool: event.tool, outcome: event.outcome, code: event.code, reqId: event.requestId },
        'tool call refused',
      );
  });
}
