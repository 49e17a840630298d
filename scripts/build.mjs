#!/usr/bin/env node
// Compiles src/**/*.ts to dist/ (one .js per .ts, same tree, so paths relative to a module such as
// ../../templates/ still resolve), so the frostgate command starts without transpiling anything.
// Run by npm's `prepare` lifecycle (npm ci, npm install) and by `npm run build`.
import { existsSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');

/** Every .ts file under src, and the newest modification time among them (bin/frostgate.mjs does the same walk). */
function sourceState(dir = src) {
  let newest = 0;
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.ts')) {
        files.push(full);
        newest = Math.max(newest, statSync(full).mtimeMs);
      }
    }
  };
  walk(dir);
  return { files, newest };
}

const started = Date.now();
const { files, newest } = sourceState();
// Built aside and swapped in, so a command starting meanwhile never finds half a dist/.
const next = `${dist}.next-${process.pid}`;
const old = `${dist}.old-${process.pid}`;
rmSync(next, { recursive: true, force: true });
await build({
  entryPoints: files,
  outdir: next,
  outbase: src,
  bundle: false,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
});
// The stamp: what dist was built from (a source edited later makes bin/frostgate.mjs fall back to tsx).
writeFileSync(
  path.join(next, 'build.json'),
  JSON.stringify({ sources: files.length, newest_source_mtime_ms: newest, built_at: new Date().toISOString() }) + '\n',
);
if (existsSync(dist)) renameSync(dist, old);
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
console.error(`frostgate: compiled ${files.length} files from src/ to dist/ in ${Date.now() - started} ms`);
