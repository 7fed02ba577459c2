import { describe, expect, it } from '@jest/globals';
import type { CallResult, ModelMessage, ModelReply, ModelRequest, ModelTool } from '../model-provider.js';
import { RulesProvider } from './rules.provider.js';

const READ_TOOLS = [
  'list_allowed_directories',
  'read_text_file',
  'list_directory',
  'directory_tree',
  'search_files',
  'grep_files',
  'get_file_info',
];

function tools(names: readonly string[] = READ_TOOLS): ModelTool[] {
  return names.map((name) => ({ name, description: name, inputSchema: { type: 'object' } }));
}

function request(messages: ModelMessage[], offered = tools()): ModelRequest {
  return { model: 'rules', system: 'You are Bastion.', messages, tools: offered, maxOutputTokens: 1024 };
}

const provider = new RulesProvider();

function ask(prompt: string, offered = tools()): Promise<ModelReply> {
  return provider.complete(request([{ role: 'user', text: prompt }], offered), new AbortController().signal);
}

/** The reply to a tool result for the call that `prompt` produced. */
async function answerFor(prompt: string, result: Omit<CallResult, 'callId' | 'name'>, offered = tools()) {
  const first = await ask(prompt, offered);
  const call = first.calls[0];
  if (!call) throw new Error(`no call for ${prompt}`);
  const messages: ModelMessage[] = [
    { role: 'user', text: prompt },
    { role: 'assistant', text: first.text, calls: first.calls },
    { role: 'tool', results: [{ callId: call.id, name: call.name, ...result }] },
  ];
  return provider.complete(request(messages, offered), new AbortController().signal);
}

describe('RulesProvider', () => {
  describe('maps a plain workspace request to one tool call', () => {
    const cases: Array<[string, string, Record<string, unknown>]> = [
      // list
      ['list files', 'list_directory', { path: '.' }],
      ['List the files in src.', 'list_directory', { path: 'src' }],
      ["what's in src?", 'list_directory', { path: 'src' }],
      ['What’s in the `docs` folder?', 'list_directory', { path: 'docs' }],
      ['ls docs', 'list_directory', { path: 'docs' }],
      ['ls -la docs/', 'list_directory', { path: 'docs' }],
      ['show the files in the workspace', 'list_directory', { path: '.' }],
      ['Can you show me the files, please?', 'list_directory', { path: '.' }],
      ['what files are in test/unit', 'list_directory', { path: 'test/unit' }],
      ['open src/', 'list_directory', { path: 'src' }],
      ["Hi! What's here?", 'list_directory', { path: '.' }],
      // tree
      ['show the tree of src', 'directory_tree', { path: 'src' }],
      ['directory tree', 'directory_tree', { path: '.' }],
      ['show me the src tree', 'directory_tree', { path: 'src' }],
      ['tree "my docs"', 'directory_tree', { path: 'my docs' }],
      ['structure of the project', 'directory_tree', { path: '.' }],
      // read
      ['read notes.txt', 'read_text_file', { path: 'notes.txt' }],
      ['show me README.md', 'read_text_file', { path: 'README.md' }],
      ['cat src/a.ts', 'read_text_file', { path: 'src/a.ts' }],
      ['open x', 'read_text_file', { path: 'x' }],
      ['read "my notes.txt"', 'read_text_file', { path: 'my notes.txt' }],
      ['please read `src/main.ts`.', 'read_text_file', { path: 'src/main.ts' }],
      ["show the contents of 'a b/c.md'", 'read_text_file', { path: 'a b/c.md' }],
      ["what's in package.json", 'read_text_file', { path: 'package.json' }],
      ['what does LICENSE say', 'read_text_file', { path: 'LICENSE' }],
      ['look at the README.md file', 'read_text_file', { path: 'README.md' }],
      // head and tail
      ['first 10 lines of a.txt', 'read_text_file', { path: 'a.txt', head: 10 }],
      ['Show me the last 5 lines of b.log', 'read_text_file', { path: 'b.log', tail: 5 }],
      ['first ten lines of "a b.txt"', 'read_text_file', { path: 'a b.txt', head: 10 }],
      ['the first line of a.txt', 'read_text_file', { path: 'a.txt', head: 1 }],
      ['head -n 20 a.txt', 'read_text_file', { path: 'a.txt', head: 20 }],
      ['tail app.log', 'read_text_file', { path: 'app.log', tail: 10 }],
      ['the end of app.log', 'read_text_file', { path: 'app.log', tail: 10 }],
      // find by name
      ['find files named *.md', 'search_files', { path: '.', pattern: '**/*.md' }],
      ['find README', 'search_files', { path: '.', pattern: '**/README*' }],
      ['where is config.json?', 'search_files', { path: '.', pattern: '**/config.json' }],
      ['find *.ts files in src', 'search_files', { path: 'src', pattern: '**/*.ts' }],
      ['find all markdown files', 'search_files', { path: '.', pattern: '**/*.md' }],
      ['list all json files in config', 'search_files', { path: 'config', pattern: '**/*.json' }],
      ['locate "docker-compose.yml"', 'search_files', { path: '.', pattern: '**/docker-compose.yml' }],
      // search text
      ['search for TODO', 'grep_files', { path: '.', pattern: 'TODO', caseSensitive: false }],
      ["grep 'foo bar' in src", 'grep_files', { path: 'src', pattern: 'foo bar' }],
      ['grep -i todo src', 'grep_files', { path: 'src', pattern: 'todo', caseSensitive: false }],
      ['grep "fn\\(x\\)"', 'grep_files', { path: '.', pattern: 'fn\\(x\\)' }],
      ['which files mention Bastion?', 'grep_files', { path: '.', pattern: 'Bastion', caseSensitive: false }],
      [
        'find files containing foo.bar() in src',
        'grep_files',
        { path: 'src', pattern: 'foo\\.bar\\(\\)', caseSensitive: false },
      ],
      [
        "search for 'log in' in docs",
        'grep_files',
        { path: 'docs', pattern: 'log in', caseSensitive: false },
      ],
      [
        'search the code for createServer',
        'grep_files',
        { path: '.', pattern: 'createServer', caseSensitive: false },
      ],
      // file info
      ['info on a.txt', 'get_file_info', { path: 'a.txt' }],
      ['how big is a.txt?', 'get_file_info', { path: 'a.txt' }],
      ['When was a.txt last modified?', 'get_file_info', { path: 'a.txt' }],
      ['stat a.txt', 'get_file_info', { path: 'a.txt' }],
      ['size of "big file.bin"', 'get_file_info', { path: 'big file.bin' }],
      // allowed directories
      ['list allowed directories', 'list_allowed_directories', {}],
      ['which directories can you access?', 'list_allowed_directories', {}],
    ];

    it.each(cases)('%s → %s', async (prompt, name, args) => {
      const reply = await ask(prompt);
      expect(reply.calls).toEqual([{ id: 'rules-1', name, arguments: args }]);
      expect(reply.stop).toBe('tool_use');
      expect(reply.usage).toEqual({ inputTokens: 0, outputTokens: 0 });
    });
  });

  describe('answers with how to configure a model when it cannot map the prompt', () => {
    const prompts: Array<[string, string]> = [
      ['chit-chat', 'hello'],
      ['a question', 'explain how the auth module works'],
      ['a delete', 'delete notes.txt'],
      ['a write', 'write hello to a.txt'],
      ['a rename', 'rename a.txt to b.txt'],
      ['a pronoun for a path', 'read it'],
      ['an empty prompt', ''],
      ['a very long prompt', `read ${'x'.repeat(10_000)}`],
    ];

    it.each(prompts)('%s', async (_label, prompt) => {
      const reply = await ask(prompt);
      expect(reply.calls).toEqual([]);
      expect(reply.stop).toBe('end');
      expect(reply.text).toContain('No language model is configured');
      expect(reply.text).toContain('BASTION_AGENT_PROVIDER=anthropic');
      expect(reply.text).toContain('ANTHROPIC_API_KEY');
      expect(reply.text).toContain('OPENAI_API_KEY');
      expect(reply.text).toContain('OPENAI_BASE_URL');
      expect(reply.text).toContain('http://127.0.0.1:11434/v1');
      expect(reply.text).toContain('"read README.md"');
    });

    it('lists only the requests whose tools the client has', async () => {
      const reply = await ask('hello', tools(['read_text_file']));
      expect(reply.text).toContain('"read README.md"');
      expect(reply.text).not.toContain('search for TODO');
    });

    it('handles a request with no messages', async () => {
      const reply = await provider.complete(request([]), new AbortController().signal);
      expect(reply.stop).toBe('end');
      expect(reply.text).toContain('ANTHROPIC_API_KEY');
    });
  });

  it('refuses in text when the tool the request needs is not offered', async () => {
    const reply = await ask('search for TODO', tools(['read_text_file', 'list_directory']));
    expect(reply.calls).toEqual([]);
    expect(reply.stop).toBe('end');
    expect(reply.text).toBe(
      'This client is not allowed to search file contents: the grep_files tool is not available to it.',
    );
  });

  it('acts on the last user prompt, not on earlier turns', async () => {
    const messages: ModelMessage[] = [
      { role: 'user', text: 'search for TODO' },
      { role: 'assistant', text: 'Nothing in the workspace contains "TODO".', calls: [] },
      { role: 'user', text: 'delete everything' },
      { role: 'assistant', text: 'No language model is configured…', calls: [] },
      { role: 'user', text: 'read notes.txt' },
    ];
    const reply = await provider.complete(request(messages), new AbortController().signal);
    expect(reply.calls).toEqual([
      { id: 'rules-1', name: 'read_text_file', arguments: { path: 'notes.txt' } },
    ]);
  });

  it('numbers call ids across the conversation', async () => {
    const messages: ModelMessage[] = [
      { role: 'user', text: 'list files' },
      {
        role: 'assistant',
        text: '',
        calls: [{ id: 'rules-1', name: 'list_directory', arguments: { path: '.' } }],
      },
      {
        role: 'tool',
        results: [{ callId: 'rules-1', name: 'list_directory', content: '[FILE] a', isError: false }],
      },
      { role: 'assistant', text: "Here is what's in the workspace:\n[FILE] a", calls: [] },
      { role: 'user', text: 'read a' },
    ];
    const reply = await provider.complete(request(messages), new AbortController().signal);
    expect(reply.calls[0]?.id).toBe('rules-2');
  });

  describe('answers from a tool result', () => {
    it('words a listing', async () => {
      const reply = await answerFor('ls src', { content: '[DIR] agent\n[FILE] main.ts', isError: false });
      expect(reply).toEqual({
        text: "Here is what's in src:\n[DIR] agent\n[FILE] main.ts",
        calls: [],
        usage: { inputTokens: 0, outputTokens: 0 },
        stop: 'end',
      });
    });

    it('quotes a file, and says which lines a head read returned', async () => {
      expect((await answerFor('read notes.txt', { content: 'hello\nworld', isError: false })).text).toBe(
        'Here is notes.txt:\nhello\nworld',
      );
      expect((await answerFor('first 2 lines of a.txt', { content: 'a\nb', isError: false })).text).toBe(
        'The first 2 lines of a.txt:\na\nb',
      );
    });

    it('draws a directory tree as an outline', async () => {
      const tree = JSON.stringify([
        { name: 'src', type: 'directory', children: [{ name: 'main.ts', type: 'file' }] },
        { name: 'README.md', type: 'file' },
      ]);
      const reply = await answerFor('directory tree', {
        content: `${tree}\n(tree incomplete: x)`,
        isError: false,
      });
      expect(reply.text).toBe(
        'Here is the tree of the workspace:\nsrc/\n  main.ts\nREADME.md\n(tree incomplete: x)',
      );
    });

    it('says when a search found nothing', async () => {
      const reply = await answerFor('search for TODO in src', {
        content: 'No matches found',
        isError: false,
      });
      expect(reply.text).toBe('Nothing in src contains "TODO".');
    });

    it('relays an error result', async () => {
      const reply = await answerFor('read missing.txt', {
        content: '"missing.txt" does not exist.',
        isError: true,
      });
      expect(reply.stop).toBe('end');
      expect(reply.text).toBe('I couldn\'t do that: "missing.txt" does not exist.');
    });

    it('cuts long content to the bound, with a note', async () => {
      const small = new RulesProvider({ maxAnswerChars: 100 });
      const content = Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n');
      const messages: ModelMessage[] = [
        { role: 'user', text: 'read big.txt' },
        {
          role: 'assistant',
          text: '',
          calls: [{ id: 'rules-1', name: 'read_text_file', arguments: { path: 'big.txt' } }],
        },
        { role: 'tool', results: [{ callId: 'rules-1', name: 'read_text_file', content, isError: false }] },
      ];
      const reply = await small.complete(request(messages), new AbortController().signal);
      expect(reply.text.length).toBeLessThan(300);
      expect(reply.text).toMatch(
        /\n… \(cut: showing \d+ of \d+ characters; ask for "the first 100 lines of big\.txt"/,
      );
      expect(reply.text).toContain(`of ${content.length} characters`);
      expect(reply.text).not.toContain('line 49');
    });

    it('lists a directory that was asked for as a file, once', async () => {
      const error = { content: 'Refused "src": it is a directory, not a file.', isError: true };
      const reply = await answerFor('show me src', error);
      expect(reply.calls).toEqual([{ id: 'rules-2', name: 'list_directory', arguments: { path: 'src' } }]);

      const later: ModelMessage[] = [
        { role: 'user', text: 'show me src' },
        {
          role: 'assistant',
          text: '',
          calls: [{ id: 'rules-1', name: 'read_text_file', arguments: { path: 'src' } }],
        },
        { role: 'tool', results: [{ callId: 'rules-1', name: 'read_text_file', ...error }] },
        {
          role: 'assistant',
          text: '',
          calls: [{ id: 'rules-2', name: 'read_text_file', arguments: { path: 'src' } }],
        },
        { role: 'tool', results: [{ callId: 'rules-2', name: 'read_text_file', ...error }] },
      ];
      const final = await provider.complete(request(later), new AbortController().signal);
      expect(final.calls).toEqual([]);
      expect(final.text).toContain("I couldn't do that");
    });
  });

  it('stops when the request is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      provider.complete(request([{ role: 'user', text: 'ls' }]), controller.signal),
    ).rejects.toThrow();
  });
});
