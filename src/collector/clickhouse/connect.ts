// A ClickHouse store from its spec: over HTTP(S) with @clickhouse/client, or in this process with
// chDB, which plugs into the same client as its `connection` (so both run the same store code;
// only the transport differs). chDB is loaded only when asked for: it is a large package.
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { TcplensError } from '../../errors.js';
import type { StoreOptions } from '../store-api.js';
import { describeStore, type StoreSpec } from '../store-url.js';
import { CLICKHOUSE_SETTINGS, ClickHouseStore } from './store.js';

type ClickHouseSpec = Exclude<StoreSpec, { kind: 'duckdb' }>;
/** The client logs failures itself, with stacks; the store turns them into coded errors instead. */
const QUIET = { level: ClickHouseLogLevel.OFF };
type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

async function chdbClient(path: string, database: string): Promise<ClickHouseClient> {
  let createChdbConnection: typeof import('chdb/connection').createChdbConnection;
  try {
    ({ createChdbConnection } = await import('chdb/connection'));
  } catch (e) {
    throw new TcplensError('TCPLENS_ERR_STORE', `chdb: cannot load the chdb package: ${(e as Error).message}`,
      'install it beside tcplens (npm install chdb@3.4.0), or use --store clickhouse://... or --db');
  }
  // chdb implements the Connection of @clickhouse/client-common, which @clickhouse/client bundles
  // its own copy of: the same interface, two declarations.
  const connection = createChdbConnection({ path }) as unknown as ClientConnection;
  const client = createClient({ connection, clickhouse_settings: CLICKHOUSE_SETTINGS, log: QUIET });
  // chDB's connection ignores the client's database; USE is kept by its session.
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  await client.command({ query: `USE ${database}` });
  return client;
}

async function httpClient(s: Extract<StoreSpec, { kind: 'clickhouse' }>): Promise<ClickHouseClient> {
  const base = { url: s.url, username: s.username, password: s.password, clickhouse_settings: CLICKHOUSE_SETTINGS, request_timeout: 60_000, log: QUIET };
  const boot = createClient(base);
  try {
    await boot.command({ query: `CREATE DATABASE IF NOT EXISTS ${s.database}` });
  } finally {
    await boot.close();
  }
  return createClient({ ...base, database: s.database });
}

export async function openClickHouseStore(spec: ClickHouseSpec, opts: StoreOptions): Promise<ClickHouseStore> {
  const where = describeStore(spec);
  let client: ClickHouseClient;
  try {
    client = spec.kind === 'chdb' ? await chdbClient(spec.path, spec.database) : await httpClient(spec);
  } catch (e) {
    if (e instanceof TcplensError) throw e;
    throw new TcplensError('TCPLENS_ERR_STORE', `cannot reach ${where}: ${(e as Error)?.message ?? String(e)}`,
      'check the --store URL, that ClickHouse is up, and the user and password (--store-password-file)');
  }
  return ClickHouseStore.open(client, { ...opts, where });
}
