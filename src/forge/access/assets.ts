import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web/access');

/**
 * The lab page's static files, read once at startup: the page's own script and style from
 * web/access/, and xterm.js with its fit addon from node_modules (served by this server, never a CDN).
 */
export async function loadAccessAssets(): Promise<ReadonlyMap<string, Asset>> {
  const require = createRequire(import.meta.url);
  const xtermRoot = path.dirname(require.resolve('@xterm/xterm/package.json'));
  const fitRoot = path.dirname(require.resolve('@xterm/addon-fit/package.json'));
  const files: Record<string, [string, string]> = {
    'lab.js': [path.join(WEB_DIR, 'lab.js'), 'text/javascript; charset=utf-8'],
    'lab.css': [path.join(WEB_DIR, 'lab.css'), 'text/css; charset=utf-8'],
    'xterm.mjs': [path.join(xtermRoot, 'lib/xterm.mjs'), 'text/javascript; charset=utf-8'],
    'xterm.css': [path.join(xtermRoot, 'css/xterm.css'), 'text/css; charset=utf-8'],
    'addon-fit.mjs': [path.join(fitRoot, 'lib/addon-fit.mjs'), 'text/javascript; charset=utf-8'],
  };
  const assets = new Map<string, Asset>();
  for (const [name, [file, contentType]] of Object.entries(files)) {
    // Source-map comments would make the browser ask for files this server does not serve.
    const text = (await readFile(file, 'utf8')).replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
    assets.set(name, textAsset(text, contentType));
  }
  return assets;
}

/** A static text file served with a content ETag. */
export function textAsset(text: string, contentType: string): Asset {
  const body = Buffer.from(text, 'utf8');
  return { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}
