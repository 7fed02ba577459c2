/**
 * The prompt parser of the `rules` provider: one plain English workspace request becomes one tool call.
 * Each intent is a small function tried in order; the first that recognises the prompt wins. Patterns
 * are anchored and the prompt is bounded, so no input can make a regex backtrack for long.
 */
import { own } from '../../common/own.js';

/** One tool call the prompt asks for. */
export interface ToolIntent {
  tool: string;
  args: Record<string, unknown>;
  /** What the call does, for "this client is not allowed to …". */
  action: string;
}

/** Longer prompts are questions for a model, not plain workspace requests. */
const MAX_PROMPT_CHARS = 500;

const PREAMBLE =
  /^(?:please|pls|kindly|hey|hi|hello|ok|okay|so|now|can you|could you|would you|will you|can i|could i|tell me|i want to|i'd like to|i would like to|i need to|let me|let's|help me)\b[\s,!.]*/i;
const POSTAMBLE = /[\s,]+(?:please|pls|for me|thanks|thank you)$/i;

/** Lower-cased phrases, without a leading "the", that name the workspace root. */
const ROOT_PHRASES = new Set([
  '.',
  './',
  'workspace',
  'workspace root',
  'root',
  'root directory',
  'root folder',
  'here',
  'there',
  'current directory',
  'current folder',
  'this directory',
  'this folder',
  'project',
  'repo',
  'repository',
  'top level',
]);

/** Words that are not paths: "read it" needs the conversation, which only a model can follow. */
const NOT_PATHS = new Set([
  'it',
  'this',
  'that',
  'them',
  'these',
  'those',
  'something',
  'anything',
  'all',
  'more',
]);

/** "find all markdown files" and the like. */
const FILE_KINDS: Readonly<Record<string, string>> = {
  markdown: '*.md',
  typescript: '*.ts',
  javascript: '*.js',
  json: '*.json',
  yaml: '*.{yml,yaml}',
  python: '*.py',
  text: '*.txt',
  html: '*.html',
  css: '*.css',
  log: '*.log',
  csv: '*.csv',
};

const NUMBER_WORDS: Readonly<Record<string, number>> = {
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  twenty: 20,
  fifty: 50,
  hundred: 100,
};

const DEFAULT_LINES = 10;
const QUOTED = /^(["'`])(.*)\1$/s;

/** The prompt without politeness, curly quotes, extra spaces or final punctuation. */
export function normalizePrompt(text: string): string {
  let s = text.replace(/[‘’]/g, "'").replace(/[“”]/g, '"').replace(/\s+/g, ' ').trim();
  for (let i = 0; i < 4; i++) {
    const next = s
      .replace(/[?!,;:]+$/, '')
      .replace(/([\w"'`)])\.$/, '$1')
      .replace(PREAMBLE, '')
      .replace(POSTAMBLE, '')
      .trim();
    if (next === s) break;
    s = next;
  }
  return s;
}

/** Text inside matching quotes or backticks, or the text itself. */
export function unquote(text: string): string {
  const quoted = QUOTED.exec(text.trim());
  return quoted ? (quoted[2] ?? '') : text.trim();
}

/**
 * A workspace-relative path from what the user wrote: quoted as given, "the workspace" and the like as
 * ".", "the src folder" as "src". Null when it is not one path (unquoted spaces, a pronoun).
 */
export function parsePath(raw: string): string | null {
  const text = raw.trim();
  const quoted = QUOTED.exec(text);
  if (quoted) return quoted[2] ? quoted[2] : null;
  const words = text.toLowerCase().replace(/^the /, '');
  if (ROOT_PHRASES.has(words)) return '.';
  const bare = text
    .replace(/^the /i, '')
    .replace(/^(?:file|folder|directory|dir) /i, '')
    .replace(/ (?:file|folder|directory|dir)$/i, '');
  const inner = unquote(bare);
  if (inner === '' || /\s|^["'`]|["'`]$/.test(inner) || NOT_PATHS.has(inner.toLowerCase())) return null;
  return inner.length > 1 ? inner.replace(/\/+$/, '') || '/' : inner;
}

/** "notes.txt", "src/a.ts": a last segment with an extension (".github" has none). */
function looksLikeFile(path: string): boolean {
  const last = path.slice(path.lastIndexOf('/') + 1);
  return last.lastIndexOf('.') > 0;
}

/** "." or "src/": written as a directory. */
function looksLikeDirectory(raw: string, path: string): boolean {
  return (
    path === '.' ||
    raw
      .trim()
      .replace(/["'`]$/, '')
      .endsWith('/')
  );
}

/** Splits "TODO in src" into the term and a scope; without a valid scope the whole text is the term. */
export function splitScope(text: string): { term: string; path: string } {
  if (QUOTED.test(text)) return { term: unquote(text), path: '.' };
  const scoped = /^(.+) (?:in|under|inside|within) (.+)$/i.exec(text);
  const path = scoped ? parsePath(scoped[2] ?? '') : null;
  return scoped && path ? { term: unquote(scoped[1] ?? ''), path } : { term: unquote(text), path: '.' };
}

/** A search_files glob for a name: a bare name matches as a prefix at any depth ("README" → README.md). */
export function nameGlob(name: string): string {
  const kind = FILE_KINDS[name.toLowerCase()];
  if (kind) return `**/${kind}`;
  const prefix = name.startsWith('**/') ? '' : '**/';
  const wild = /[*?[{]/.test(name);
  return `${prefix}${name}${wild || looksLikeFile(name) ? '' : '*'}`;
}

/** The term as an RE2 literal: natural-language searches are for text, not regular expressions. */
export function escapeRegex(term: string): string {
  return term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function lineCount(word: string | undefined, plural: boolean): number {
  if (word === undefined) return plural ? DEFAULT_LINES : 1;
  return own(NUMBER_WORDS, word.toLowerCase()) ?? Number(word);
}

const list = (path: string): ToolIntent => ({
  tool: 'list_directory',
  args: { path },
  action: 'list directories',
});
const read = (path: string, extra: Record<string, number> = {}): ToolIntent => ({
  tool: 'read_text_file',
  args: { path, ...extra },
  action: 'read files',
});
const grep = (path: string, pattern: string, caseSensitive: boolean): ToolIntent => ({
  tool: 'grep_files',
  args: caseSensitive ? { path, pattern } : { path, pattern, caseSensitive: false },
  action: 'search file contents',
});

function allowedDirectoriesIntent(s: string): ToolIntent | null {
  const asked =
    /^(?:(?:list|show|display|get|what are)(?: me)? )?(?:the |your )?allowed (?:directories|dirs|folders|roots|paths)$/i.test(
      s,
    ) ||
    /^(?:which|what) (?:directories|folders|dirs|paths) (?:can|may|do) (?:you|i) (?:access|see|read|use|reach)$/i.test(
      s,
    ) ||
    /^where can (?:you|i) (?:read|look|access|work)$/i.test(s);
  return asked
    ? { tool: 'list_allowed_directories', args: {}, action: 'list the allowed directories' }
    : null;
}

const INFO_PATTERNS: readonly RegExp[] = [
  /^(?:(?:get|show|give|display)(?: me)? )?(?:the )?(?:file )?(?:info|information|details|metadata|stats|stat|properties|size|permissions|modification time|mtime)(?: (?:on|about|for|of))? (.+)$/i,
  /^how (?:big|large|old) is (.+)$/i,
  /^what(?:'s| is) the (?:size|modification time|mtime|creation time|permissions|last modified time) of (.+)$/i,
  /^what size is (.+)$/i,
  /^when (?:was|were|did) (.+?) (?:last )?(?:modified|changed|change|created|updated|edited|written|touched)$/i,
  /^is (.+) a (?:file|directory|folder)$/i,
];

function fileInfoIntent(s: string): ToolIntent | null {
  for (const pattern of INFO_PATTERNS) {
    const path = parsePath(pattern.exec(s)?.[1] ?? '');
    if (path) return { tool: 'get_file_info', args: { path }, action: 'look at file details' };
  }
  return null;
}

const VERB = '(?:(?:show|read|print|display|give|get|cat|see|view)(?: me)? )?(?:the )?';
const HEAD_TAIL = new RegExp(
  `^${VERB}(first|last|top|bottom|head|tail) (?:(\\d{1,6}|[a-z]+) )?(lines?) (?:of|in|from) (.+)$`,
  'i',
);
const HEAD_TAIL_SHELL = /^(head|tail)(?: -n ?(\d{1,6})| -(\d{1,6}))? (.+)$/i;
const START_END = new RegExp(`^${VERB}(beginning|start|top|end|bottom) of (.+)$`, 'i');

function headTailIntent(s: string): ToolIntent | null {
  const which = (word: string) => (/^(?:first|top|head|beginning|start)$/i.test(word) ? 'head' : 'tail');
  let m = HEAD_TAIL.exec(s);
  if (m) {
    const lines = lineCount(m[2], m[3]?.toLowerCase() === 'lines');
    const path = parsePath(m[4] ?? '');
    return path && lines > 0 ? read(path, { [which(m[1] ?? '')]: lines }) : null;
  }
  m = HEAD_TAIL_SHELL.exec(s);
  if (m) {
    const path = parsePath(m[4] ?? '');
    return path ? read(path, { [which(m[1] ?? '')]: Number(m[2] ?? m[3] ?? DEFAULT_LINES) }) : null;
  }
  m = START_END.exec(s);
  const path = m ? parsePath(m[2] ?? '') : null;
  return m && path ? read(path, { [which(m[1] ?? '')]: DEFAULT_LINES }) : null;
}

const TREE = new RegExp(
  `^${VERB}(?:a )?(?:(.+?) )?(?:tree|structure|layout|hierarchy)(?: (?:view|structure|listing))?(?: (?:of|for|under|in|below))?(?: (.+))?$`,
  'i',
);
const TREE_QUALIFIERS = new Set(
  'the a directory folder file project workspace full whole complete entire recursive dir'.split(' '),
);
const onlyQualifiers = (words: string) =>
  words.split(' ').every((w) => w === '' || TREE_QUALIFIERS.has(w.toLowerCase()));

function treeIntent(s: string): ToolIntent | null {
  const m = TREE.exec(s);
  if (!m) return null;
  const before = m[1] ?? '';
  const named = onlyQualifiers(before) ? (m[2] ?? '.') : m[2] === undefined ? before : null;
  const path = named === null ? null : parsePath(named);
  return path ? { tool: 'directory_tree', args: { path }, action: 'see directory trees' } : null;
}

const CONTAINING =
  /^(?:(?:which|what|find|list|show|search for|get)(?: me)?(?: all)?(?: the)? )?(?:files?|places?|lines?)(?: (?:that|which|where))? (?:mention|mentions|mentioning|contain|contains|containing|reference|references|referencing|include|includes|including|say|says|use|uses|using)(?: the (?:word|text|string|phrase|term))? (.+)$/i;
const MENTIONED = /^where (?:is|are) (.+) (?:mentioned|used|referenced)$/i;

function containingIntent(s: string): ToolIntent | null {
  const m = CONTAINING.exec(s) ?? MENTIONED.exec(s);
  if (!m) return null;
  const { term, path } = splitScope(m[1] ?? '');
  return term ? grep(path, escapeRegex(term), false) : null;
}

const NAMED =
  /^(?:find|locate|search for|look for|list|show|get)(?: me)?(?: all)?(?: the)?(?: (?:files?|directories|folders|dirs?|paths?))? (?:named|called|matching|like|with the name|whose name is) (.+)$/i;
const FIND = /^(?:find|locate)(?: me)?(?: all)?(?: the)?(?: (?:files?|directory|folder))? (.+)$/i;
const WHERE = /^where(?:'s| is| are| can i find| do i find)(?: the)? (.+)$/i;
/** "list all markdown files": a kind of file only, as "list src" lists a directory. */
const LIST_KIND =
  /^(?:list|show|get|give)(?: me)?(?: all)?(?: the)? (\w+ files(?: (?:in|under|inside|within) .+)?)$/i;

function findByNameIntent(s: string): ToolIntent | null {
  const named = NAMED.exec(s) ?? FIND.exec(s) ?? WHERE.exec(s);
  const kind = named ? null : LIST_KIND.exec(s);
  const m = named ?? kind;
  if (!m) return null;
  const { term, path } = splitScope(m[1] ?? '');
  const name = term.replace(/ (?:files?|folders?|directories|directory)$/i, '');
  if (!name || /\s/.test(name) || /^(?:files?|all|it|this|that)$/i.test(name)) return null;
  if (kind && FILE_KINDS[name.toLowerCase()] === undefined) return null;
  return { tool: 'search_files', args: { path, pattern: nameGlob(name) }, action: 'find files by name' };
}

const SEARCH = /^(?:search(?: for)?|look for|hunt for) (.+)$/i;
const SEARCH_IN = /^search(?: in| through)?(?: the)? (\S+|"[^"]*"|'[^']*'|`[^`]*`) for (.+)$/i;
/** "search the code for X": words for everything, as a search scope only ("ls files" lists ./files). */
const EVERYWHERE = /^(?:code|codebase|files|everything|all files)$/i;
const GREP = /^(?:grep|rg)((?: -\w+)*) (.+)$/i;
const TWO_TOKENS = /^("[^"]*"|'[^']*'|`[^`]*`|\S+) ("[^"]*"|'[^']*'|`[^`]*`|\S+)$/;

function grepIntent(s: string): ToolIntent | null {
  const inDir = SEARCH_IN.exec(s);
  const scope = inDir?.[1] ?? '';
  const inPath = inDir ? (EVERYWHERE.test(scope) ? '.' : parsePath(scope)) : null;
  if (inDir && inPath) return grep(inPath, escapeRegex(unquote(inDir[2] ?? '')), false);
  const m = SEARCH.exec(s);
  if (m) {
    const { term, path } = splitScope(m[1] ?? '');
    return term && term.toLowerCase() !== 'for' ? grep(path, escapeRegex(term), false) : null;
  }
  // grep is for people who write regular expressions: the pattern goes as typed (RE2 is linear-time).
  const g = GREP.exec(s);
  if (!g) return null;
  const caseSensitive = !/-\w*i/.test(g[1] ?? '');
  const shell = TWO_TOKENS.exec(g[2] ?? '');
  const shellPath = shell ? parsePath(shell[2] ?? '') : null;
  const { term, path } =
    shell && shellPath ? { term: unquote(shell[1] ?? ''), path: shellPath } : splitScope(g[2] ?? '');
  return term ? grep(path, term, caseSensitive) : null;
}

const LIST_PATTERNS: readonly RegExp[] = [
  /^(?:ls|ll|dir)(?: -\w+)*(?: (.+))?$/i,
  /^list(?: me)?(?: all)?(?: the)?(?: (?:files and (?:folders|directories)|files|contents|content|entries|items|everything|directory|folder|dir))?(?: (?:in|of|inside|under|within|from|at|for))?(?: (.+))?$/i,
  /^(?:show|display|view|print|get|give|see)(?: me)?(?: all)?(?: the)? (?:files and (?:folders|directories)|files|entries|items|listing|file list|directory listing|folders|directories)(?: (?:in|of|inside|under|within|at|for))?(?: (.+))?$/i,
  /^what (?:files and (?:folders|directories)|files|folders|directories|things)(?: are| do (?:you|we|i) have| can you see| exist)?(?: there| here)?(?: (?:in|inside|under) (.+))?$/i,
  /^(?:files|contents) (?:in|of|inside|under) (.+)$/i,
  /^what(?:'s| is|s) (here|there)$/i,
];
const WHATS_IN = /^what(?:'s| is|s) (?:in|inside|under) (.+)$/i;

function listIntent(s: string): ToolIntent | null {
  for (const pattern of LIST_PATTERNS) {
    const m = pattern.exec(s);
    if (!m) continue;
    const path = m[1] === undefined ? '.' : parsePath(m[1]);
    return path ? list(path) : null;
  }
  const m = WHATS_IN.exec(s);
  const path = m ? parsePath(m[1] ?? '') : null;
  if (!m || !path) return null;
  return looksLikeFile(path) ? read(path) : list(path);
}

const FILE_WORDS = '(?: (?:the )?(?:file|contents? of(?: the file)?|content of|text of))?';
const READ = new RegExp(`^(?:read|cat|print|type|less|more|dump)(?: me)?(?: the)?${FILE_WORDS} (.+)$`, 'i');
const SHOW = new RegExp(
  `^(?:show|open|view|display|see|get|give|look at)(?: me)?(?: the)?${FILE_WORDS} (.+)$`,
  'i',
);
const WHAT_DOES = /^what does (.+) (?:say|contain)$/i;

function readIntent(s: string): ToolIntent | null {
  const m = READ.exec(s) ?? WHAT_DOES.exec(s);
  if (m) {
    const path = parsePath(m[1] ?? '');
    if (!path) return null;
    return path === '.' ? list(path) : read(path);
  }
  // "show"/"open" fit a directory too: one written as such is listed (and a wrong guess is recovered from).
  const shown = SHOW.exec(s);
  const path = shown ? parsePath(shown[1] ?? '') : null;
  if (!shown || !path) return null;
  return looksLikeDirectory(shown[1] ?? '', path) ? list(path) : read(path);
}

/** In order: the more specific phrasings first ("find files containing" before "find"). */
const INTENTS: ReadonlyArray<(prompt: string) => ToolIntent | null> = [
  allowedDirectoriesIntent,
  fileInfoIntent,
  headTailIntent,
  treeIntent,
  containingIntent,
  findByNameIntent,
  grepIntent,
  listIntent,
  readIntent,
];

/** The one tool call a plain workspace request asks for, or null when it is not one. */
export function parsePrompt(prompt: string): ToolIntent | null {
  if (prompt.length > MAX_PROMPT_CHARS) return null;
  const s = normalizePrompt(prompt);
  if (s === '') return null;
  for (const intent of INTENTS) {
    const found = intent(s);
    if (found) return found;
  }
  return null;
}
