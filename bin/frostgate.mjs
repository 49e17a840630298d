#!/usr/bin/env node
// Runs the CLI compiled to dist/ by `npm run build` (npm ci runs it through `prepare`), so no
// command transpiles TypeScript at start. When dist/ is missing or older than src/ (a source was
// edited since), it runs src/ through tsx instead and says so: stale code never runs silently.
import { readdirSync, readFileSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);

function distIsFresh() {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(new URL('dist/build.json', root), 'utf8'));
  } catch {
    return false;
  }
  let sources = 0;
  let newest = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(new URL(`${e.name}/`, dir));
      else if (e.name.endsWith('.ts')) {
        sources++;
        newest = Math.max(newest, statSync(new URL(e.name, dir)).mtimeMs);
      }
    }
  };
  walk(new URL('src/', root));
  return sources === stamp.sources && newest <= stamp.newest_source_mtime_ms;
}

let main;
if (process.env.FG_CLI_FROM_SOURCE !== '1' && distIsFresh()) {
  ({ main } = await import('../dist/cli/main.js'));
} else {
  if (process.env.FG_CLI_FROM_SOURCE !== '1')
    process.stderr.write('frostgate: dist/ is missing or older than src/; running from source (slow start). `npm run build` fixes it.\n');
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exit(await main(process.argv.slice(2)));
