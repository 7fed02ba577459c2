import type { CallToolResult, Tool as McpTool } from '@modelcontextprotocol/client';
import { z } from 'zod';
import { printable } from '../common/printable.js';
import type { UpstreamConfig } from '../config/upstreams.schema.js';
import { jsonBytes } from '../tools/json-bytes.js';
import type { ContentBlock, Tool, ToolAnnotations, ToolContext, ToolResult } from '../tools/tool.js';

/** Names every model API and MCP client accepts. */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** An upstream offers at most this many tools; more is a misconfiguration or an attack on the model's context. */
export const MAX_UPSTREAM_TOOLS = 256;
const MAX_DESCRIPTION_CHARS = 2_048;
const MAX_TITLE_CHARS = 200;
/** A skipped tool's name is shown this long at most. */
const MAX_SKIPPED_NAME_CHARS = 100;
const MAX_SCHEMA_BYTES = 64 * 1024;

/** A tool the upstream listed that is not offered, and why. */
export interface SkippedTool {
  name: string;
  reason: string;
}

/** What the gateway calls for a tool: the upstream's own name, with the tool's hints for retries. */
export type UpstreamCall = (
  name: string,
  args: unknown,
  ctx: ToolContext,
  hints: ToolAnnotations,
) => Promise<ToolResult>;

/**
 * The tools of an upstream as Bastion offers them: the allow and deny lists applied, the name prefixed, the
 * upstream's texts made printable (titles, descriptions, and those in its schemas), its schemas otherwise
 * shown as they are, and every call handed to `call` after the door's checks.
 */
export function upstreamTools(
  config: UpstreamConfig,
  listed: readonly McpTool[],
  call: UpstreamCall,
  available: () => boolean,
): { tools: Tool[]; skipped: SkippedTool[] } {
  const tools: Tool[] = [];
  const skipped: SkippedTool[] = [];
  const { allow, deny } = config.tools;
  for (const tool of listed) {
    if ((allow && !allow.includes(tool.name)) || deny.includes(tool.name)) continue;
    const name = `${config.prefix}${tool.name}`;
    const reason =
      tools.length >= MAX_UPSTREAM_TOOLS
        ? `more than ${MAX_UPSTREAM_TOOLS} tools`
        : !TOOL_NAME.test(name)
          ? 'the name, with its prefix, is not 1-64 letters, digits, _ or -'
          : jsonBytes(tool.inputSchema) + jsonBytes(tool.outputSchema ?? {}) > MAX_SCHEMA_BYTES
            ? `its schemas are over ${MAX_SCHEMA_BYTES} bytes`
            : undefined;
    if (reason) {
      skipped.push({ name: printable(tool.name.slice(0, MAX_SKIPPED_NAME_CHARS)), reason });
      continue;
    }
    const annotations = hintsOf(tool);
    const inputSchema = withPrintableTexts(tool.inputSchema) as Record<string, unknown>;
    tools.push({
      name,
      title: printable((tool.title ?? tool.annotations?.title ?? tool.name).slice(0, MAX_TITLE_CHARS)),
      description: describedAs(tool.description ?? ''),
      scopes: [config.scope],
      annotations,
      input: inputValidator(inputSchema),
      schemas: {
        input: inputSchema,
        ...(tool.outputSchema && {
          output: withPrintableTexts(tool.outputSchema) as Record<string, unknown>,
        }),
      },
      available,
      handler: (args, ctx) => call(tool.name, args, ctx, annotations),
    });
  }
  return { tools, skipped };
}

/** A description as shown: cut short, printable, its newlines and tabs kept (models and clients read them). */
function describedAs(text: string): string {
  return printable(text.slice(0, MAX_DESCRIPTION_CHARS), { keepLines: true });
}

/** The upstream's hints, with the protocol's defaults where it gave none (assume the worst). */
function hintsOf(tool: McpTool): ToolAnnotations {
  const given = tool.annotations ?? {};
  return {
    readOnlyHint: given.readOnlyHint ?? false,
    destructiveHint: given.destructiveHint ?? true,
    idempotentHint: given.idempotentHint ?? false,
    openWorldHint: given.openWorldHint ?? true,
  };
}

/**
 * Checks arguments against the upstream's input schema at the door: types, required properties, enums,
 * bounds. Regular expressions (`pattern`) are left to the upstream: an untrusted pattern must not run here,
 * where it could stall the event loop. A schema zod cannot read leaves the check to the upstream as well.
 */
export function inputValidator(schema: unknown): z.ZodType {
  let check: z.ZodType;
  try {
    check = z.fromJSONSchema(withoutPatterns(schema) as Parameters<typeof z.fromJSONSchema>[0]);
  } catch {
    check = z.record(z.string(), z.unknown());
  }
  // The arguments go upstream as the caller sent them: checked, never rewritten (no defaults, no stripping).
  return z.unknown().superRefine((args, ctx) => {
    const parsed = check.safeParse(args);
    if (parsed.success) return;
    for (const issue of parsed.error.issues)
      ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  });
}

/** Keywords whose values are data rather than schemas. */
const VALUE_KEYWORDS = new Set(['const', 'enum', 'default', 'examples']);

function withoutPatterns(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutPatterns);
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'pattern' || key === 'patternProperties') continue;
    if (VALUE_KEYWORDS.has(key)) {
      copy[key] = value; // instance data, not schemas: kept as it is
      continue;
    }
    copy[key] =
      key === 'properties' || key === '$defs' || key === 'definitions'
        ? Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, withoutPatterns(v)]))
        : withoutPatterns(value);
  }
  return copy;
}

/** Keywords whose values are maps of names to schemas. */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);

/**
 * A copy of a JSON Schema whose `title` and `description` annotations are printable: clients show them to
 * people and models. Names (property keys) and data (`enum`, `const`, `default`, `examples`) are left as they
 * are: changing them would change what the upstream accepts.
 */
function withPrintableTexts(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withPrintableTexts);
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (VALUE_KEYWORDS.has(key)) copy[key] = value;
    else if (key === 'description' && typeof value === 'string')
      copy[key] = printable(value, { keepLines: true });
    else if (key === 'title' && typeof value === 'string') copy[key] = printable(value);
    else if (SCHEMA_MAPS.has(key) && typeof value === 'object' && value !== null && !Array.isArray(value))
      copy[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withPrintableTexts(v)]));
    else copy[key] = withPrintableTexts(value);
  }
  return copy;
}

/** An upstream's result as Bastion returns it: known content kept, the rest named, nothing else carried. */
export function toolResultOf(result: CallToolResult): ToolResult {
  const out: ToolResult = { content: (result.content ?? []).map(contentBlock) };
  const structured = result.structuredContent;
  if (typeof structured === 'object' && structured !== null && !Array.isArray(structured))
    out.structuredContent = structured as Record<string, unknown>;
  if (result.isError) out.isError = true;
  return out;
}

function contentBlock(block: CallToolResult['content'][number]): ContentBlock {
  switch (block.type) {
    case 'text':
      return { type: 'text', text: block.text };
    case 'image':
    case 'audio':
      return { type: block.type, data: block.data, mimeType: block.mimeType };
    case 'resource':
      return {
        type: 'resource',
        resource: block.resource as Extract<ContentBlock, { type: 'resource' }>['resource'],
      };
    case 'resource_link':
      return {
        type: 'resource_link',
        uri: block.uri,
        name: block.name,
        ...(block.mimeType && { mimeType: block.mimeType }),
        ...(block.description && { description: block.description }),
      };
    default:
      return { type: 'text', text: `[${String((block as { type: unknown }).type)} content omitted]` };
  }
}
