// The collector's web page: a few static files from this folder of the source tree plus uPlot
// from node_modules, served by exact name (no path from the request ever reaches the file
// system). They carry no data, so they need no token; the page sends the token with each query.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/src/collector/web/static.js -> the repository root is four levels up; the page's files are
// read from src/ so a fresh clone serves them after the normal build with nothing copied.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const here = join(root, 'src', 'collector', 'web');
const uplot = dirname(createRequire(import.meta.url).resolve('uplot/package.json'));

const FILES: Record<string, { path: string; type: string }> = {
  '/': { path: join(here, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { path: join(here, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { path: join(here, 'style.css'), type: 'text/css; charset=utf-8' },
  '/vendor/uPlot.iife.min.js': { path: join(uplot, 'dist', 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/uPlot.min.css': { path: join(uplot, 'dist', 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

export const STATIC_PATHS = Object.keys(FILES);

export interface StaticFile { body: Buffer; headers: Record<string, string> }

const cache = new Map<string, Promise<Buffer>>();

/** The file served at pathname, or null when none is. Files are read once and kept (they are small). */
export async function staticFile(pathname: string): Promise<StaticFile | null> {
  const f = Object.hasOwn(FILES, pathname) ? FILES[pathname] : undefined;
  if (!f) return null;
  let body = cache.get(f.path);
  if (!body) { body = readFile(f.path); cache.set(f.path, body); body.catch(() => cache.delete(f.path)); }
  return {
    body: await body,
    headers: {
      'content-type': f.type,
      'x-content-type-options': 'nosniff',
      // Only our own scripts and styles, and queries to this collector: data can never become code.
      'content-security-policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
      'cache-control': 'no-cache',
    },
  };
}
