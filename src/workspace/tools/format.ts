const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** Human-readable size, as the reference filesystem server prints it. */
export function formatSize(bytes: number): string {
  if (bytes <= 0) return '0 B';
  const i = Math.min(Math.floor(Math.log(bytes) / Math.log(1024)), UNITS.length - 1);
  if (i === 0) return `${bytes} B`;
  return `${(bytes / 1024 ** i).toFixed(2)} ${UNITS[i]}`;
}
