import { Command, Option } from 'commander';

export const DEFAULT_URL = 'http://127.0.0.1:3000/mcp';

export interface ChatFlags {
  url: string;
  key?: string;
  conversation?: string;
  readOnly?: boolean;
}

/** `bastion chat`: a terminal client for the SecureAgent of a running server, one prompt per line. */
export function chatCommand(): Command {
  return (
    new Command('chat')
      .description(
        'talk to the SecureAgent of a running Bastion server: one prompt per line from stdin ' +
          '(a terminal, or piped: lines are sent in order and it exits at the end)',
      )
      .addOption(
        new Option('--url <url>', "the server's MCP endpoint").env('BASTION_URL').default(DEFAULT_URL),
      )
      .addOption(
        new Option(
          '--key <key>',
          'API key, sent as "Authorization: Bearer" (prefer the variable: arguments show in ps)',
        ).env('BASTION_API_KEY'),
      )
      .addOption(new Option('--conversation <id>', 'continue this conversation'))
      .addOption(new Option('--read-only', 'the conversations this session starts may not change files'))
      // The client (and the MCP SDK it uses) is loaded only when chat runs, not with every command.
      .action((flags: ChatFlags) => import('./chat-run.js').then(({ runChat }) => runChat(flags)))
  );
}
