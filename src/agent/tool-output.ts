import type { ToolResult } from '../tools/tool.js';

/**
 * Bytes of tool output a turn may still feed back to the model: each result is cut to the per-result cap
 * and to what is left of the turn's budget, with a note saying so.
 */
export class OutputBudget {
  private left: number;

  constructor(
    total: number,
    private readonly perResult: number,
  ) {
    this.left = total;
  }

  /** The text the model sees for a result. */
  take(result: ToolResult): string {
    const text = renderResult(result);
    if (this.left <= 0)
      return '[Output omitted: the tool-output budget of this turn is used up. Answer with what you have.]';
    const cap = Math.min(this.perResult, this.left);
    const bytes = Buffer.byteLength(text);
    if (bytes <= cap) {
      this.left -= bytes;
      return text;
    }
    this.left -= cap;
    return `${cutToBytes(text, cap)}\n[Cut: ${bytes} bytes in all, ${cap} shown. Ask for less (head, tail or a narrower path).]`;
  }
}

/** A tool result as text: text blocks as they are, binary content named but not included. */
export function renderResult(result: ToolResult): string {
  return result.content
    .map((block) => {
      if (block.type === 'text') return block.text;
      if (block.type === 'resource') {
        const { uri, mimeType, text } = block.resource;
        return text ?? `[binary resource ${uri}${mimeType ? ` (${mimeType})` : ''} omitted]`;
      }
      if (block.type === 'resource_link') return `[resource link ${block.uri}]`;
      return `[${block.type} (${block.mimeType}, ${block.data.length} base64 characters) omitted]`;
    })
    .join('\n');
}

function cutToBytes(text: string, bytes: number): string {
  // A cut inside a multi-byte character decodes to U+FFFD at the end: dropped.
  return Buffer.from(text)
    .subarray(0, bytes)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
}
