import { mkdirSync, readFileSync, writeFileSync, symlinkSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createWorkspaceFixture, textOf, type WorkspaceFixture } from '../support/workspace-fixture.js';

let ws: WorkspaceFixture;
beforeEach(async () => {
  ws = await createWorkspaceFixture();
  mkdirSync(path.join(ws.root, 'src/lib'), { recursive: true });
  writeFileSync(path.join(ws.root, 'README.md'), '# Title\nline 2\nline 3\n');
  writeFileSync(path.join(ws.root, 'src/main.ts'), 'export const x = 1;\n// TODO: more\n');
  writeFileSync(path.join(ws.root, 'src/lib/util.ts'), 'export function util() {\n  return 42;\n}\n');
  writeFileSync(path.join(ws.root, '.env'), 'SECRET=1\n');
});
afterEach(() => ws.cleanup());

describe('workspace tools: happy paths', () => {
  it('reads text whole, by head and by tail', async () => {
    expect(textOf(await ws.call('read_text_file', { path: 'README.md' }))).toBe('# Title\nline 2\nline 3\n');
    expect(textOf(await ws.call('read_text_file', { path: 'README.md', head: 2 }))).toBe('# Title\nline 2');
    expect(textOf(await ws.call('read_text_file', { path: 'README.md', tail: 1 }))).toBe('line 3');
    const result = await ws.call('read_text_file', { path: path.join(ws.root, 'README.md') });
    expect(result.structuredContent).toEqual({ content: '# Title\nline 2\nline 3\n' });
  });

  it('lists, with sizes, as a tree, hiding protected files', async () => {
    const listing = textOf(await ws.call('list_directory', { path: '.' }));
    expect(listing.split('\n').sort()).toEqual(['[DIR] src', '[FILE] README.md']);
    const sized = textOf(await ws.call('list_directory_with_sizes', { path: '.', sortBy: 'size' }));
    expect(sized).toContain('Total: 1 files, 1 directories');
    const tree = await ws.call('directory_tree', { path: '.' });
    expect(JSON.parse(textOf(tree))).toEqual([
      { name: 'README.md', type: 'file' },
      {
        name: 'src',
        type: 'directory',
        children: [
          { name: 'lib', type: 'directory', children: [{ name: 'util.ts', type: 'file' }] },
          { name: 'main.ts', type: 'file' },
        ],
      },
    ]);
  });

  it('searches names and contents', async () => {
    const found = await ws.call('search_files', { path: '.', pattern: '**/*.ts' });
    expect(found.structuredContent?.matches).toEqual(['src/lib/util.ts', 'src/main.ts']);
    const grep = await ws.call('grep_files', { path: 'src', pattern: 'TODO|return \\d+' });
    expect(grep.structuredContent?.matches).toEqual([
      { path: 'src/lib/util.ts', line: 2, text: '  return 42;' },
      { path: 'src/main.ts', line: 2, text: '// TODO: more' },
    ]);
  });

  it('writes, edits (dry run first), moves, creates and deletes', async () => {
    await ws.call('write_file', { path: 'notes.txt', content: 'alpha\nbeta\n' });
    expect(readFileSync(path.join(ws.root, 'notes.txt'), 'utf8')).toBe('alpha\nbeta\n');
    const dry = await ws.call('edit_file', {
      path: 'notes.txt',
      edits: [{ oldText: 'beta', newText: 'gamma' }],
      dryRun: true,
    });
    expect(textOf(dry)).toContain('+gamma');
    expect(readFileSync(path.join(ws.root, 'notes.txt'), 'utf8')).toBe('alpha\nbeta\n');
    await ws.call('edit_file', { path: 'notes.txt', edits: [{ oldText: 'beta', newText: 'gamma' }] });
    expect(readFileSync(path.join(ws.root, 'notes.txt'), 'utf8')).toBe('alpha\ngamma\n');
    expect((await ws.call('create_directory', { path: 'a/b/c' })).isError).toBeUndefined();
    expect(statSync(path.join(ws.root, 'a/b/c')).isDirectory()).toBe(true);
    await ws.call('move_file', { source: 'notes.txt', destination: 'a/b/notes.txt' });
    expect(existsSync(path.join(ws.root, 'a/b/notes.txt'))).toBe(true);
    await ws.call('delete_file', { path: 'a/b/notes.txt' });
    expect(existsSync(path.join(ws.root, 'a/b/notes.txt'))).toBe(false);
  });

  it('reports file info and allowed directories', async () => {
    const info = await ws.call('get_file_info', { path: 'README.md' });
    expect(info.structuredContent).toMatchObject({ size: 22, isFile: true, isDirectory: false });
    const dirs = await ws.call('list_allowed_directories', {});
    expect(dirs.structuredContent).toMatchObject({ directories: ['.'] });
    expect(textOf(dirs)).not.toContain(ws.root);
  });

  it('refuses an escape through a symlink without naming the root', async () => {
    writeFileSync(path.join(ws.outside, 'secret.txt'), 'outside');
    symlinkSync(path.join(ws.outside, 'secret.txt'), path.join(ws.root, 'leak.txt'));
    const result = await ws.call('read_text_file', { path: 'leak.txt' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('outside the workspace');
    expect(textOf(result)).not.toContain(ws.base);
  });
});
