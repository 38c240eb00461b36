// The stores the collector's shared suites run against, both real engines: the embedded DuckDB
// file, and ClickHouse as chDB embeds it (the chdb npm package: a current ClickHouse in this
// process, driven through @clickhouse/client's own client, as clickhouse:// is). chDB binds one
// data directory per process, so each test gets its own database in this process's directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { StoreSpec } from '../../src/collector/store-url.js';

export const STORE_KINDS = ['duckdb', 'clickhouse'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

let chdbDir: string | null = null;
function chdbPath(): string {
  if (!chdbDir) {
    const dir = chdbDir = mkdtempSync(join(tmpdir(), 'tcplens-chdb-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return chdbDir;
}

/** A new, empty place for a store of this kind (opened as often as a test likes: a reopen sees what was stored). */
export function newStorePlace(kind: StoreKind, t: { after: (fn: () => void) => void }): StoreSpec {
  if (kind === 'clickhouse') return { kind: 'chdb', path: chdbPath(), database: `t_${randomBytes(6).toString('hex')}` };
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { kind: 'duckdb', path: join(dir, 'events.duckdb') };
}

/** --store / --db value for a collector process on a new place of this kind (its own chDB directory: another process). */
export function newStoreArg(kind: StoreKind, dir: string): string {
  return kind === 'clickhouse' ? `chdb:${join(dir, 'chdb')}` : join(dir, 'e.duckdb');
}
