import { open } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { DEFAULT_URL, type ChatFlags } from './chat.command.js';
import { ChatError, ChatSession, displayUrl, type ChatAnswer, type ChatHistory } from './chat-session.js';

// `bastion chat` at work: the session loop, its commands and its terminal view.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const HELP = [
  'Type a prompt and press Enter. Commands:',
  '  /new            the next prompt starts a new conversation',
  '  /history        the turns of this conversation',
  '  /export [file]  save this conversation as JSON (default conversation-<id>.json, mode 0600)',
  '  /help           this list',
  '  /quit           leave (or Ctrl-D)',
];

/** What one input line led to. */
type Next = 'continue' | 'quit' | 'fatal';

export async function runChat(flags: ChatFlags): Promise<void> {
  const url = parseUrl(flags.url);
  if (flags.conversation !== undefined && !UUID.test(flags.conversation))
    throw new Error('--conversation takes a conversation id (a UUID).');
  const interactive = Boolean(process.stdin.isTTY);
  const view = new ChatView(interactive && Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
  const session = new ChatSession({
    url,
    ...(flags.key && { key: flags.key }),
    ...(flags.conversation && { conversationId: flags.conversation }),
    ...(flags.readOnly && { readOnly: true }),
  });
  try {
    await session.connect();
  } catch (error) {
    view.error(error);
    process.exitCode = 1;
    return;
  }
  if (interactive)
    view.note(`Bastion chat at ${displayUrl(url)}. /help lists the commands; /quit or Ctrl-D leaves.`);
  try {
    process.exitCode = (await readLines(session, view, interactive)) === 'fatal' ? 1 : 0;
  } finally {
    await session.close();
  }
}

function parseUrl(value: string): URL {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  } catch {
    // reported below
  }
  throw new Error(`--url must be an http(s) URL, such as ${DEFAULT_URL}.`);
}

/**
 * Prompts are handled one at a time, in order: on a terminal with a `you> ` prompt, and from a pipe until
 * EOF. Ctrl-C cancels the turn in flight, or leaves when there is none.
 */
async function readLines(session: ChatSession, view: ChatView, interactive: boolean): Promise<Next> {
  const input = readline.createInterface({
    input: process.stdin,
    ...(interactive && { output: process.stdout }),
    terminal: interactive,
    prompt: 'you> ',
  });
  let turn: AbortController | undefined;
  input.on('SIGINT', () => (turn ? turn.abort() : input.close()));
  if (interactive) input.prompt();
  try {
    for await (const raw of input) {
      const line = raw.trim();
      if (line) {
        // Piped prompts are not echoed by a terminal: show them, so that the transcript reads as a dialogue.
        if (!interactive) view.line(`you> ${line}`);
        turn = new AbortController();
        const next = await handle(line, session, view, turn.signal);
        turn = undefined;
        if (next !== 'continue') return next;
      }
      if (interactive) input.prompt();
    }
    // Ctrl-D or Ctrl-C at the prompt: end the prompt's line before leaving.
    if (interactive) process.stdout.write('\n');
    return 'quit';
  } finally {
    input.close();
  }
}

async function handle(
  line: string,
  session: ChatSession,
  view: ChatView,
  signal: AbortSignal,
): Promise<Next> {
  const command = /^\/([a-z]+)(?:\s+(.*))?$/i.exec(line);
  try {
    if (!command) {
      await converse(line, session, view, signal);
      return 'continue';
    }
    const [, name = '', argument] = command;
    switch (name.toLowerCase()) {
      case 'quit':
      case 'exit':
        return 'quit';
      case 'help':
        HELP.forEach((text) => view.line(text));
        break;
      case 'new':
        session.forget();
        view.note('The next prompt starts a new conversation.');
        break;
      case 'history':
        view.history(await session.history());
        break;
      case 'export':
        await exportTo(argument?.trim(), session, view);
        break;
      default:
        view.error(new ChatError('refused', `Unknown command /${name}: /help lists the commands.`));
    }
  } catch (error) {
    view.error(error);
    if (error instanceof ChatError && error.kind === 'unreachable') return 'fatal';
  }
  return 'continue';
}

async function converse(prompt: string, session: ChatSession, view: ChatView, signal: AbortSignal) {
  const before = session.conversationId;
  let shown = 0;
  const answer = await session.converse(
    prompt,
    (step) => {
      shown++;
      view.step(step.message ?? `step ${step.progress}`);
    },
    signal,
  );
  // Progress is best effort: show any step whose notification did not arrive.
  for (const step of answer.steps.slice(shown)) view.step(`${step.tool}: ${step.outcome}`);
  view.answer(answer);
  if (answer.conversation_id !== before) view.line(`conversation ${answer.conversation_id}`);
}

async function exportTo(file: string | undefined, session: ChatSession, view: ChatView): Promise<void> {
  const document = await session.export();
  const target = path.resolve(file || `conversation-${session.conversationId}.json`);
  try {
    // Security: the export holds the whole conversation; only its owner may read the file.
    const handle = await open(target, 'w', 0o600);
    try {
      await handle.chmod(0o600);
      await handle.writeFile(`${JSON.stringify(document, null, 2)}\n`);
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'failed';
    throw new ChatError('failed', `Cannot write ${target}: ${code}.`);
  }
  view.line(`exported conversation ${session.conversationId} to ${target}`);
}

/** Answers and transcripts on stdout, notes and errors on stderr. */
class ChatView {
  constructor(private readonly color: boolean) {}

  line(text: string): void {
    process.stdout.write(`${clean(text)}\n`);
  }

  step(text: string): void {
    this.line(`  · ${text}`);
  }

  answer({ answer, usage }: ChatAnswer): void {
    this.line(answer.trimEnd());
    const calls = `${usage.model_calls} model call${usage.model_calls === 1 ? '' : 's'}`;
    this.dim(
      `  ${usage.provider}/${usage.model} · ${calls} · ${usage.input_tokens} in / ${usage.output_tokens} out tokens`,
    );
  }

  history(conversation: ChatHistory): void {
    const turns = `${conversation.turns.length} turn${conversation.turns.length === 1 ? '' : 's'}`;
    const mode = conversation.readOnly ? ' · read-only' : '';
    this.line(`conversation ${conversation.id} · ${turns}${mode} · kept until ${conversation.expiresAt}`);
    for (const turn of conversation.turns) {
      this.dim(`turn ${turn.seq} · ${turn.at} · ${turn.provider}/${turn.model}`);
      this.line(`you> ${turn.prompt}`);
      for (const step of turn.steps) this.step(`${step.tool}: ${step.outcome}`);
      this.line(turn.answer.trimEnd());
    }
  }

  note(text: string): void {
    process.stderr.write(`${clean(text)}\n`);
  }

  error(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${clean(message).replace(/\s*\n\s*/g, ' ')}\n`);
  }

  private dim(text: string): void {
    process.stdout.write(this.color ? `\x1b[2m${clean(text)}\x1b[22m\n` : `${clean(text)}\n`);
  }
}

/**
 * Security: answers quote file contents, which may hold terminal escape sequences; only newlines and tabs
 * of what the server sends reach the terminal.
 */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\r\n/g, '\n').replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, '');
}
