import type {
  CallResult,
  ModelMessage,
  ModelProvider,
  ModelReply,
  ModelRequest,
  ProposedCall,
} from '../model-provider.js';
import { parsePrompt, type ToolIntent } from './rules.intents.js';

export interface RulesProviderOptions {
  /** Longest tool output quoted in an answer, in characters; the rest is cut with a note. */
  maxAnswerChars?: number;
}

const DEFAULT_MAX_ANSWER_CHARS = 8 * 1024;

type Args = Record<string, unknown>;

/** One example per tool the fallback answer may offer, in the order it lists them. */
const EXAMPLES: ReadonlyArray<readonly [tool: string, example: string]> = [
  ['list_directory', `list a directory: "list files in src", "what's in docs"`],
  ['directory_tree', 'show a tree: "show the tree of src"'],
  [
    'read_text_file',
    'read a file: "read README.md", "first 10 lines of notes.txt", "last 5 lines of app.log"',
  ],
  ['search_files', 'find files by name: "find files named *.md", "where is config.json"'],
  ['grep_files', 'search file contents: "search for TODO in src", "which files mention Bastion"'],
  ['get_file_info', 'file details: "how big is notes.txt", "when was notes.txt modified"'],
  ['list_allowed_directories', 'where I may look: "list allowed directories"'],
];

const SETUP = [
  'No language model is configured, so I can only carry out plain workspace requests, one at a time.',
  '',
  'To answer anything else, configure a model and restart Bastion:',
  '- Anthropic: BASTION_AGENT_PROVIDER=anthropic with ANTHROPIC_API_KEY.',
  '- OpenAI: BASTION_AGENT_PROVIDER=openai with OPENAI_API_KEY. For a local server (Ollama, vLLM, LM Studio) also ' +
    'set OPENAI_BASE_URL, e.g. http://127.0.0.1:11434/v1, and BASTION_OPENAI_MODEL; it may not need a key.',
].join('\n');

/**
 * A failed first step the request was probably phrased for: "show me src" reads src, which is a directory,
 * so it is listed instead (and the other way round for a file).
 */
const RECOVERIES: ReadonlyArray<{
  from: readonly string[];
  error: RegExp;
  intent: (path: string) => ToolIntent;
}> = [
  {
    from: ['read_text_file'],
    error: /\bit is a directory\b/,
    intent: (path) => ({ tool: 'list_directory', args: { path }, action: 'list directories' }),
  },
  {
    from: ['list_directory', 'directory_tree'],
    error: /\bit is not a directory\b/,
    intent: (path) => ({ tool: 'read_text_file', args: { path }, action: 'read files' }),
  },
];

function text(args: Args, key: string): string | undefined {
  const value = args[key];
  return typeof value === 'string' ? value : undefined;
}

function where(args: Args): string {
  const path = text(args, 'path') ?? '.';
  return path === '.' ? 'the workspace' : path;
}

/** Readable form of an escaped literal ("foo\.bar" → "foo.bar"). */
function shownPattern(args: Args): string {
  return (text(args, 'pattern') ?? '').replace(/\\(.)/g, '$1');
}

/** `No matches found` is how search_files and grep_files say so, possibly followed by a stop note. */
function noMatches(content: string): string | null {
  if (!content.startsWith('No matches found')) return null;
  const note = content.slice('No matches found'.length).trim();
  return note ? ` ${note}` : '';
}

interface TreeNode {
  name: string;
  type: string;
  children?: TreeNode[];
}

function isTree(value: unknown): value is TreeNode[] {
  return (
    Array.isArray(value) &&
    value.every(
      (n: unknown) =>
        typeof n === 'object' &&
        n !== null &&
        typeof (n as TreeNode).name === 'string' &&
        ((n as TreeNode).children === undefined || isTree((n as TreeNode).children)),
    )
  );
}

function parseJson(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

/** directory_tree's JSON, drawn as an indented outline; anything else is shown as it came. */
function renderTree(content: string): string {
  // A tree cut short carries a note after its JSON: "\n(tree incomplete: …)".
  const noteAt = content.lastIndexOf('\n(');
  let tree = parseJson(content);
  let note = '';
  if (!isTree(tree) && noteAt >= 0) {
    tree = parseJson(content.slice(0, noteAt));
    note = content.slice(noteAt);
  }
  if (!isTree(tree)) return content;
  const lines: string[] = [];
  const draw = (nodes: TreeNode[], depth: number) => {
    for (const node of nodes) {
      lines.push(`${'  '.repeat(depth)}${node.name}${node.type === 'directory' ? '/' : ''}`);
      if (node.children) draw(node.children, depth + 1);
    }
  };
  draw(tree, 0);
  return (lines.length > 0 ? lines.join('\n') : '(empty)') + note;
}

/** How each tool's result is put into words. `content` is already cut to size. */
const ANSWERS: Readonly<Record<string, (args: Args, content: string) => string>> = {
  list_directory: (args, content) =>
    content.trim() === '' ? `${where(args)} is empty.` : `Here is what's in ${where(args)}:\n${content}`,
  list_directory_with_sizes: (args, content) => `Here is what's in ${where(args)}:\n${content}`,
  directory_tree: (args, content) => `Here is the tree of ${where(args)}:\n${renderTree(content)}`,
  read_text_file: (args, content) => {
    const path = where(args);
    if (typeof args.head === 'number') return `The first ${args.head} lines of ${path}:\n${content}`;
    if (typeof args.tail === 'number') return `The last ${args.tail} lines of ${path}:\n${content}`;
    return content === '' ? `${path} is empty.` : `Here is ${path}:\n${content}`;
  },
  search_files: (args, content) => {
    const none = noMatches(content);
    if (none !== null) return `No files in ${where(args)} match ${shownPattern(args)}.${none}`;
    return `Files in ${where(args)} matching ${shownPattern(args)}:\n${content}`;
  },
  grep_files: (args, content) => {
    const none = noMatches(content);
    if (none !== null) return `Nothing in ${where(args)} contains "${shownPattern(args)}".${none}`;
    return `Lines in ${where(args)} containing "${shownPattern(args)}":\n${content}`;
  },
  get_file_info: (args, content) => `About ${where(args)}:\n${content}`,
  list_allowed_directories: (_args, content) => content,
};

function reply(answer: string, calls: ProposedCall[] = []): ModelReply {
  return {
    text: answer,
    calls,
    usage: { inputTokens: 0, outputTokens: 0 },
    stop: calls.length > 0 ? 'tool_use' : 'end',
  };
}

/**
 * The embedded default provider: no model and no network. It maps a plain workspace request ("list
 * files in src", "read README.md", "search for TODO") to one tool call, words the result, and answers
 * anything else with how to configure a real model. Deterministic: the same conversation gets the same reply.
 */
export class RulesProvider implements ModelProvider {
  readonly name = 'rules';
  private readonly maxAnswerChars: number;

  constructor(options: RulesProviderOptions = {}) {
    this.maxAnswerChars = options.maxAnswerChars ?? DEFAULT_MAX_ANSWER_CHARS;
  }

  async complete(request: ModelRequest, signal: AbortSignal): Promise<ModelReply> {
    signal.throwIfAborted();
    const offered = new Set(request.tools.map((t) => t.name));
    const last = request.messages.at(-1);
    if (last?.role === 'user') return this.onPrompt(last.text, offered, request.messages);
    if (last?.role === 'tool') return this.onResults(last.results, offered, request.messages);
    return reply(fallback(offered));
  }

  private onPrompt(prompt: string, offered: ReadonlySet<string>, messages: ModelMessage[]): ModelReply {
    const intent = parsePrompt(prompt);
    if (!intent) return reply(fallback(offered));
    return this.propose(intent, offered, messages);
  }

  private propose(intent: ToolIntent, offered: ReadonlySet<string>, messages: ModelMessage[]): ModelReply {
    if (!offered.has(intent.tool)) {
      return reply(
        `This client is not allowed to ${intent.action}: the ${intent.tool} tool is not available to it.`,
      );
    }
    return reply('', [{ id: nextCallId(messages), name: intent.tool, arguments: intent.args }]);
  }

  private onResults(
    results: CallResult[],
    offered: ReadonlySet<string>,
    messages: ModelMessage[],
  ): ModelReply {
    const calls = callsBefore(messages);
    const recovery = isFirstStep(messages) && results.length === 1 ? recover(results[0], calls) : null;
    if (recovery && offered.has(recovery.tool)) return this.propose(recovery, offered, messages);
    if (results.length === 0) return reply('The tools returned nothing.');
    return reply(results.map((r) => this.describe(r, calls.get(r.callId))).join('\n\n'));
  }

  private describe(result: CallResult, call: ProposedCall | undefined): string {
    const name = call?.name ?? result.name;
    const args = isArgs(call?.arguments) ? call.arguments : {};
    const readHint =
      name === 'read_text_file' ? `; ask for "the first 100 lines of ${where(args)}" to see a part` : '';
    const content = this.clip(result.content, readHint);
    if (result.isError) return `I couldn't do that: ${content}`;
    const answer = ANSWERS[name];
    return answer ? answer(args, content) : `Result of ${name}:\n${content}`;
  }

  /** Cuts long content at a line end within the bound, saying how much was left out. */
  private clip(content: string, hint: string): string {
    const max = this.maxAnswerChars;
    if (content.length <= max) return content;
    const lineEnd = content.lastIndexOf('\n', max);
    const cut = lineEnd >= max / 2 ? lineEnd : max;
    return `${content.slice(0, cut)}\n… (cut: showing ${cut} of ${content.length} characters${hint})`;
  }
}

function isArgs(value: unknown): value is Args {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `rules-N`, numbered across the conversation so ids stay unique within it. */
function nextCallId(messages: ModelMessage[]): string {
  const proposed = messages.reduce((n, m) => n + (m.role === 'assistant' ? m.calls.length : 0), 0);
  return `rules-${proposed + 1}`;
}

/** The calls of the assistant message the last tool results answer, by id. */
function callsBefore(messages: ModelMessage[]): Map<string, ProposedCall> {
  const previous = messages.at(-2);
  return new Map(previous?.role === 'assistant' ? previous.calls.map((c) => [c.id, c] as const) : []);
}

/** The results answer the first call made for the current prompt (so a recovery is tried at most once). */
function isFirstStep(messages: ModelMessage[]): boolean {
  return messages.at(-3)?.role === 'user' && messages.at(-2)?.role === 'assistant';
}

function recover(result: CallResult | undefined, calls: Map<string, ProposedCall>): ToolIntent | null {
  const call = result ? calls.get(result.callId) : undefined;
  if (!result?.isError || !call || !isArgs(call.arguments)) return null;
  const path = text(call.arguments, 'path');
  const rule = RECOVERIES.find((r) => r.from.includes(call.name) && r.error.test(result.content));
  return rule && path !== undefined ? rule.intent(path) : null;
}

function fallback(offered: ReadonlySet<string>): string {
  const examples = EXAMPLES.filter(([tool]) => offered.has(tool)).map(([, example]) => `- ${example}`);
  const understood =
    examples.length > 0
      ? `Requests I understand:\n${examples.join('\n')}`
      : 'This client has no workspace tools I could use.';
  return `${SETUP}\n\n${understood}`;
}
