// The shape of the code, checked, so review findings cannot come back unnoticed: lower layers
// never import higher ones, one name means one thing, one binding per C library.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';

const src = join(repoRoot, 'src');

function files(dir: string, ext: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name), ext) : e.name.endsWith(ext) ? [join(dir, e.name)] : []);
}

const ts = files(src, '.ts').map((f) => ({ path: relative(src, f), text: readFileSync(f, 'utf8') }));
const layerOf = (p: string) => p.split('/')[0].replace(/\.(ts|js)$/, '');

// Which top-level parts of src/ each part may import (errors.ts and lifecycle.ts sit under all).
const allowed: Record<string, string[]> = {
  errors: [],
  lifecycle: ['errors', 'kernel'],
  kernel: ['errors'],
  net: ['errors'],
  sinks: ['errors'],
  capabilities: ['errors', 'lifecycle', 'kernel', 'net', 'sinks'],
  lab: ['errors', 'lifecycle', 'kernel', 'net', 'capabilities'],
  collector: ['errors', 'lifecycle', 'net', 'sinks', 'capabilities'],
  cli: ['errors', 'lifecycle', 'kernel', 'net', 'sinks', 'capabilities', 'lab', 'collector'],
};

test('lower layers never import higher ones (lab and capabilities never import cli)', () => {
  const bad: string[] = [];
  for (const f of ts) {
    const from = layerOf(f.path);
    for (const m of f.text.matchAll(/from '(\.[^']+)'/g)) {
      const target = relative(src, join(src, f.path, '..', m[1]));
      if (target.startsWith('..')) continue; // node_modules-free relative imports only
      const to = layerOf(target);
      if (to !== from && !(allowed[from] ?? []).includes(to)) bad.push(`${f.path} imports ${target}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('a sink never imports the name -> sink map (no import circle)', () => {
  for (const f of ts.filter((x) => x.path.startsWith('sinks/') && x.path !== 'sinks/index.ts')) {
    assert.doesNotMatch(f.text, /from '\.\/index\.js'/, f.path);
  }
});

test('one meaning per name: no exported type, interface or class name is defined twice', () => {
  const seen = new Map<string, string>();
  const dup: string[] = [];
  for (const f of ts) {
    for (const m of f.text.matchAll(/^export (?:interface|type|class) (\w+)/gm)) {
      if (seen.has(m[1])) dup.push(`${m[1]}: ${seen.get(m[1])} and ${f.path}`);
      else seen.set(m[1], f.path);
    }
  }
  assert.deepEqual(dup, []);
});

test('each C library is bound once (koffi.load)', () => {
  const loads = ts.flatMap((f) => [...f.text.matchAll(/koffi\.load\('([^']+)'\)/g)].map((m) => `${m[1]} in ${f.path}`));
  const libs = loads.map((l) => l.split(' ')[0]);
  assert.equal(new Set(libs).size, libs.length, loads.join(', '));
});

test('kernel-side headers have distinct names on the include path', () => {
  const headers = [...files(join(repoRoot, 'bpf'), '.h'), ...files(src, '.h')].map((f) => f.split('/').pop()!);
  assert.equal(new Set(headers).size, headers.length, headers.join(', '));
});
