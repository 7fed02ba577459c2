import type { ToolResult } from '../tools/tool.js';
import { rawTarget } from '../tools/door.js';
import type { Sandbox } from '../workspace/sandbox.js';
import type { ProposedCall } from './model-provider.js';
import { renderResult } from './tool-output.js';

const MAX_SUMMARY_CHARS = 300;

/**
 * One line on what a step did: the tool and the path it named, and for a refusal the door's own message
 * (Bastion's wording). Never file contents: a summary is shown in progress and kept with the turn.
 */
export function stepSummary(call: ProposedCall, result: ToolResult, sandbox: Sandbox): string {
  const target = rawTarget(call.arguments, { sandbox });
  const what = target ? `${call.name} ${target}` : call.name;
  if (!result.isError) return what.slice(0, MAX_SUMMARY_CHARS);
  const reason = renderResult(result).split('\n', 1)[0] ?? '';
  return `${what}: ${reason}`.slice(0, MAX_SUMMARY_CHARS);
}
