// Where the built BPF objects live, wherever tcplens is run from.
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

/** The repository root: dist/src/kernel/paths.js is three levels below it. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Path of the object built from `<source>.bpf.c`, e.g. objectPath('src/capabilities/accept/accept'). */
export function objectPath(source: string): string {
  return join(repoRoot, 'build', 'bpf', `${source}.bpf.o`);
}
