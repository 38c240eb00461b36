// Which store the collector writes to, from --store / --db: the embedded DuckDB file (default),
// a ClickHouse server over HTTP(S), or chDB (ClickHouse embedded in this process, for one node
// and for tests). A password comes from the URL or a file and is never part of what is printed.
import { TcplensError } from '../errors.js';
import type { CollectorStore, StoreOptions } from './store-api.js';
import { EventStore } from './store.js';

export type StoreSpec =
  | { kind: 'duckdb'; path: string }
  | { kind: 'clickhouse'; url: string; username: string; password: string; database: string }
  | { kind: 'chdb'; path: string; database: string };

export const DEFAULT_DATABASE = 'tcplens';
const DATABASE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

function badStore(message: string): never {
  throw new TcplensError('TCPLENS_ERR_BAD_FLAG', message,
    'e.g. --store clickhouse://tcplens@127.0.0.1:8123/tcplens (https: clickhouses://), --store chdb:/var/lib/tcplens/chdb, or --db FILE.duckdb');
}

/** --store URL (password from the URL or, better, from passwordFile's text) -> a store spec. */
export function parseStoreUrl(value: string, password: string | null = null): StoreSpec {
  if (value.startsWith('duckdb:')) return { kind: 'duckdb', path: nonEmpty(value.slice(7)) };
  if (value.startsWith('chdb:')) {
    const [path, database = DEFAULT_DATABASE] = value.slice(5).split('#');
    return { kind: 'chdb', path: nonEmpty(path), database: checkDatabase(database) };
  }
  const m = /^(clickhouses?):\/\//.exec(value);
  if (!m) badStore(`--store ${redact(value)}: expected clickhouse://, clickhouses://, chdb: or duckdb:`);
  let u: URL;
  try { u = new URL(value.replace(/^clickhouse/, 'http')); } catch { badStore(`--store ${redact(value)}: not a URL`); }
  if (u.search || u.hash) badStore(`--store ${redact(value)}: no query or fragment expected`);
  const fromUrl = u.password ? decodeURIComponent(u.password) : null;
  if (fromUrl !== null && password !== null) badStore('--store has a password and --store-password-file gives one too: give one of them');
  const database = checkDatabase(decodeURIComponent(u.pathname.replace(/^\//, '')) || DEFAULT_DATABASE);
  const port = u.port || (m[1] === 'clickhouses' ? '8443' : '8123');
  return { kind: 'clickhouse', url: `${u.protocol}//${u.hostname}:${port}`, username: decodeURIComponent(u.username) || 'default', password: fromUrl ?? password ?? '', database };
}

function nonEmpty(path: string): string {
  if (!path) badStore('--store: a path is missing after the scheme');
  return path;
}

function checkDatabase(db: string): string {
  if (!DATABASE.test(db)) badStore(`--store: database '${db.slice(0, 40)}' is not a plain name (letters, digits, '_')`);
  return db;
}

/** The spec as it may be printed: never a password. */
export function describeStore(s: StoreSpec): string {
  if (s.kind === 'duckdb') return `db ${s.path}`;
  if (s.kind === 'chdb') return `chdb ${s.path}, database ${s.database}`;
  return `clickhouse ${s.url.replace(/^http/, 'clickhouse').replace('://', `://${encodeURIComponent(s.username)}@`)}/${s.database}`;
}

/** A URL as given, password replaced, for error messages. */
function redact(value: string): string {
  return value.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@').slice(0, 120);
}

export async function openStore(spec: StoreSpec, opts: StoreOptions): Promise<CollectorStore> {
  if (spec.kind === 'duckdb') return EventStore.open(spec.path, opts);
  const { openClickHouseStore } = await import('./clickhouse/connect.js');
  return openClickHouseStore(spec, opts);
}
