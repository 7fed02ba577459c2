import type { Tool } from '../tools/tool.js';
import { directoryTree, listDirectory, listDirectoryWithSizes } from './tools/list.tools.js';
import { getFileInfo, listAllowedDirectories, readMediaFile, readMultipleFiles, readTextFile } from './tools/read.tools.js';
import { grepFiles, searchFiles } from './tools/search.tools.js';
import { createDirectory, deleteFile, editFile, moveFile, writeFile } from './tools/write.tools.js';

/**
 * The workspace toolset: the reference filesystem server's tools, plus grep_files and delete_file.
 * list_allowed_directories comes first: it takes no arguments and tells a client where it may work.
 */
export const workspaceTools: readonly Tool[] = [
  listAllowedDirectories,
  readTextFile,
  readMediaFile,
  readMultipleFiles,
  writeFile,
  editFile,
  createDirectory,
  listDirectory,
  listDirectoryWithSizes,
  directoryTree,
  moveFile,
  searchFiles,
  grepFiles,
  getFileInfo,
  deleteFile,
] as Tool[];
