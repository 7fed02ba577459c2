import { z } from 'zod';
import { BastionError } from '../common/bastion-error.js';
import { dataResult, defineTool, type Tool } from '../tools/tool.js';
import { ToolRefusal } from '../tools/tool.errors.js';
import type { AgentService } from './agent.service.js';

const step = z.object({
  tool: z.string(),
  outcome: z.enum(['ok', 'refused', 'error']),
  summary: z.string(),
});

const answer = z.object({
  conversation_id: z.string(),
  answer: z.string(),
  steps: z.array(step),
  usage: z.object({
    input_tokens: z.number(),
    output_tokens: z.number(),
    model_calls: z.number(),
    provider: z.string(),
    model: z.string(),
  }),
});

/**
 * `converse`: one prompt to the SecureAgent, in a new conversation or a continued one. The agent works in the
 * caller's workspace with the caller's own file scopes; each step is reported as progress when asked for.
 */
export function converseTool(agent: AgentService, maxPromptChars: number): Tool {
  return defineTool({
    name: 'converse',
    title: 'Converse with the SecureAgent',
    description:
      'Send a prompt to the SecureAgent, which works in the workspace with the file tools you may use, ' +
      'every step checked by a supervisor. Omit conversation_id to start a conversation; pass the returned ' +
      'conversation_id to continue it. Returns the answer, the steps taken and the tokens used.',
    scopes: ['agent'],
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    input: z.object({
      prompt: z.string().min(1).max(maxPromptChars).describe('What you would like done or answered.'),
      conversation_id: z.uuid().optional().describe('The conversation to continue; omit to start one.'),
      read_only: z
        .boolean()
        .optional()
        .describe('For a new conversation: the agent may read but never change files in it.'),
    }),
    output: answer,
    async handler(args, ctx) {
      try {
        const result = await agent.converse(
          {
            ...ctx,
            onStep: (done, index) =>
              void ctx
                .progress?.({ progress: index, message: `${done.tool}: ${done.outcome}` })
                .catch(() => undefined),
          },
          {
            prompt: args.prompt,
            ...(args.conversation_id !== undefined && { conversationId: args.conversation_id }),
            ...(args.read_only !== undefined && { readOnly: args.read_only }),
          },
        );
        return dataResult(JSON.stringify(result), result as unknown as Record<string, unknown>);
      } catch (error) {
        // Bastion's own errors (unknown conversation, busy, provider failures) are answers the caller can act on.
        if (error instanceof BastionError && !(error instanceof ToolRefusal))
          throw new ToolRefusal(error.code, error.message);
        throw error;
      }
    },
  });
}
