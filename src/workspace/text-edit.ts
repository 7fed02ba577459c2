import { createTwoFilesPatch } from 'diff';
import { ToolRefusal } from '../tools/tool.errors.js';

export interface TextEdit {
  oldText: string;
  newText: string;
}

export interface EditOutcome {
  /** The new file content, in the file's own line endings. */
  content: string;
  /** A git-style unified diff, fenced as a ```diff block. */
  diff: string;
}

/**
 * Applies edits in order. Each `oldText` is looked for exactly first; failing that, line by line with
 * leading and trailing whitespace ignored (keeping the file's indentation). CRLF and LF are treated alike,
 * and a file written with CRLF keeps CRLF.
 */
export function applyEdits(original: string, edits: readonly TextEdit[], displayPath: string): EditOutcome {
  const crlf = usesCrlf(original);
  const base = toLf(original);
  let modified = base;
  edits.forEach((edit, index) => {
    modified = applyOne(modified, toLf(edit.oldText), toLf(edit.newText), index);
  });
  const patch = createTwoFilesPatch(displayPath, displayPath, base, modified, 'original', 'modified');
  let fence = '```';
  while (patch.includes(fence)) fence += '`';
  return { content: crlf ? modified.replace(/\n/g, '\r\n') : modified, diff: `${fence}diff\n${patch}${fence}\n\n` };
}

function applyOne(content: string, oldText: string, newText: string, index: number): string {
  if (oldText === '') throw new ToolRefusal('edit_not_found', `Edit ${index + 1}: oldText is empty.`);
  const at = content.indexOf(oldText);
  if (at !== -1) return content.slice(0, at) + newText + content.slice(at + oldText.length);

  const oldLines = oldText.split('\n');
  const lines = content.split('\n');
  for (let i = 0; i + oldLines.length <= lines.length; i++) {
    if (!oldLines.every((line, j) => line.trim() === (lines[i + j] as string).trim())) continue;
    const indent = /^\s*/.exec(lines[i] as string)?.[0] ?? '';
    const replaced = newText.split('\n').map((line, j) => {
      if (j === 0) return indent + line.trimStart();
      const oldIndent = /^\s*/.exec(oldLines[j] ?? '')?.[0] ?? '';
      const newIndent = /^\s*/.exec(line)?.[0] ?? '';
      if (oldIndent && newIndent) {
        return indent + ' '.repeat(Math.max(0, newIndent.length - oldIndent.length)) + line.trimStart();
      }
      return line;
    });
    lines.splice(i, oldLines.length, ...replaced);
    return lines.join('\n');
  }
  const preview = oldText.length > 200 ? `${oldText.slice(0, 200)}…` : oldText;
  throw new ToolRefusal(
    'edit_not_found',
    `Edit ${index + 1}: could not find this text in the file (nothing was changed):\n${preview}`,
  );
}

function toLf(text: string): string {
  return text.replace(/\r\n/g, '\n');
}

function usesCrlf(text: string): boolean {
  const crlf = text.split('\r\n').length - 1;
  if (crlf === 0) return false;
  const lf = text.split('\n').length - 1;
  return crlf * 2 >= lf;
}
