// Quotes, backslashes, control characters (JSON escapes them) and surrogates (a lone one is escaped too).
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * The length in bytes of JSON.stringify(value) as UTF-8, without building the string: the response cap is
 * checked on every tool result, and most of a result is a few long strings that need no escaping.
 */
export function jsonBytes(value: unknown): number {
  if (typeof value === 'string') {
    return NEEDS_ESCAPE.test(value) ? Buffer.byteLength(JSON.stringify(value)) : Buffer.byteLength(value) + 2;
  }
  if (Array.isArray(value)) {
    let bytes = 2 + Math.max(0, value.length - 1);
    for (const item of value) bytes += item === undefined ? 4 : jsonBytes(item);
    return bytes;
  }
  if (value !== null && typeof value === 'object') {
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
      return Buffer.byteLength(JSON.stringify(value) ?? '');
    }
    let bytes = 2;
    let members = 0;
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      bytes += jsonBytes(key) + 1 + jsonBytes(item);
      members++;
    }
    return bytes + Math.max(0, members - 1);
  }
  return Buffer.byteLength(JSON.stringify(value) ?? '');
}
