// Summarizes a V8 .cpuprofile: self time aggregated by function (callFrame functionName + url), and by
// where the code lives (node internals, a node_modules package, Bastion's dist/, GC, idle).
//
//   node bench/cpuprofile-summary.mjs <file.cpuprofile | dir> [top=15] [skipMs=0]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Self time per profile node: the interval after each sample is charged to the node it sampled. Samples
 * in the first `skipMs` of the profile (process start-up) are left out.
 */
function selfTimes(profile, skipMs = 0) {
  const self = new Map();
  const { samples, timeDeltas } = profile;
  let elapsed = 0;
  for (let i = 0; i < samples.length; i++) {
    elapsed += timeDeltas[i] ?? 0;
    if (elapsed < skipMs * 1000) continue;
    const delta = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + Math.max(0, delta));
  }
  return self;
}

function shortUrl(url) {
  if (!url) return '';
  const clean = url.replace(/^file:\/\//, '');
  const modules = clean.lastIndexOf('/node_modules/');
  if (modules >= 0) return clean.slice(modules + '/node_modules/'.length);
  const dist = clean.lastIndexOf('/dist/');
  if (dist >= 0) return clean.slice(dist + 1);
  return clean;
}

/** Which body of code a frame belongs to. */
function category(frame) {
  const { functionName, url } = frame;
  if (!url) {
    if (/^\((garbage collector|idle|program|root)\)$/.test(functionName)) return functionName;
    return '(native / V8 builtins)';
  }
  if (url.startsWith('node:')) return 'node: internals';
  const clean = url.replace(/^file:\/\//, '');
  const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(clean.slice(clean.lastIndexOf('/node_modules/')));
  if (match) return match[1];
  if (clean.includes('/dist/')) return 'bastion (dist/)';
  return clean;
}

export function summarize(profile, top = 15, skipMs = 0) {
  const self = selfTimes(profile, skipMs);
  let total = 0;
  const byFunction = new Map();
  const byCategory = new Map();
  for (const node of profile.nodes) {
    const time = self.get(node.id) ?? 0;
    if (time === 0) continue;
    total += time;
    const frame = node.callFrame;
    const key = `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}`.trim();
    const entry = byFunction.get(key) ?? {
      function: frame.functionName || '(anonymous)',
      url: shortUrl(frame.url),
      us: 0,
    };
    if (!entry.line && frame.url) entry.line = frame.lineNumber + 1;
    entry.us += time;
    byFunction.set(key, entry);
    const cat = category(frame);
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + time);
  }
  const idle = byCategory.get('(idle)') ?? 0;
  const pct = (us) => Math.round((us / total) * 1000) / 10;
  const busyPct = (us) => Math.round((us / Math.max(1, total - idle)) * 1000) / 10;
  const rows = [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ ...e, ms: Math.round(e.us / 100) / 10, pct: pct(e.us), busyPct: busyPct(e.us) }));
  const categories = [...byCategory.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, pct: pct(us), busyPct: busyPct(us) }));
  return {
    totalMs: Math.round(total / 100) / 10,
    idleMs: Math.round(idle / 100) / 10,
    top: rows,
    categories,
  };
}

export function formatSummary(summary) {
  const lines = [
    `Total sampled ${summary.totalMs} ms, idle ${summary.idleMs} ms. "% busy" excludes (idle).`,
    '',
    '| # | self ms | % total | % busy | function | location |',
    '|---:|---:|---:|---:|---|---|',
    ...summary.top.map(
      (r, i) =>
        `| ${i + 1} | ${r.ms} | ${r.pct} | ${r.busyPct} | \`${r.function}\` | ${r.url ? `${r.url}:${r.line}` : ''} |`,
    ),
    '',
    '| where | self ms | % total | % busy |',
    '|---|---:|---:|---:|',
    ...summary.categories.slice(0, 20).map((c) => `| ${c.name} | ${c.ms} | ${c.pct} | ${c.busyPct} |`),
  ];
  return lines.join('\n');
}

/** The newest .cpuprofile in a directory (or the file itself). */
export function resolveProfile(target) {
  if (!statSync(target).isDirectory()) return target;
  const files = readdirSync(target)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(target, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (files.length === 0) throw new Error(`no .cpuprofile in ${target}`);
  return files[0];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = resolveProfile(process.argv[2] ?? '/tmp/bastion-prof');
  const top = Number(process.argv[3] ?? 15);
  const skipMs = Number(process.argv[4] ?? 0);
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  process.stdout.write(`${file}\n\n${formatSummary(summarize(profile, top, skipMs))}\n`);
}
