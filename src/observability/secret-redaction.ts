/**
 * Secrets that text can carry by accident (a provider's error message echoing a key, a path named after a
 * token): found by shape and replaced before the text is logged or audited. A backstop, not a license to
 * log content: Bastion logs ids, codes and names, never prompts, answers or files.
 */
const PATTERNS: readonly RegExp[] = [
  // PEM private keys, whole blocks.
  /-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[\s\S]{0,10000}?-----END [A-Z ]{0,40}PRIVATE KEY-----/g,
  // Bastion API keys.
  /\bbst_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\b/g,
  // Anthropic and OpenAI keys (sk-ant-..., sk-proj-..., sk-...).
  /\bsk-[A-Za-z0-9_-]{16,}/g,
  // JSON Web Tokens.
  /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}/g,
  // GitHub and Slack tokens, AWS access key ids.
  /\bgh[pousr]_[A-Za-z0-9]{30,}\b/g,
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/g,
  /\bAKIA[0-9A-Z]{16}\b/g,
  // Bearer credentials in quoted headers.
  /\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/gi,
];

// `password=...`, `api_key: ...`: the name stays, the value goes.
const ASSIGNMENT =
  /\b(password|passwd|secret|token|api[_-]?key|access[_-]?key)(\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&]+)/gi;

export const REDACTION = '[redacted]';

export function redactSecrets(text: string): string {
  let out = text;
  for (const pattern of PATTERNS) out = out.replace(pattern, REDACTION);
  return out.replace(ASSIGNMENT, (_match, name: string, sep: string) => `${name}${sep}${REDACTION}`);
}

/** URLs in text with their credentials and query replaced (a database URL's password, a token parameter). */
export function maskUrls(text: string): string {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, `$1${REDACTION}@`)
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s?#]*)[?#]\S*/gi, `$1?${REDACTION}`);
}
