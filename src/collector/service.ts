// A running collector: the store (DuckDB file), its metrics and agent reports, and the HTTP API
// listening. `tcplens collector` runs one until a signal; `tcplens lab demo --collector` runs one
// beside the demo. Everything it opens is registered with onCleanup, the listener before the
// store, so a stop closes the listener first (no new batch is accepted) and the store last.
// With a bus, a consumer also pulls batches from NATS JetStream into the same store; it stops
// (finishing the batches in hand) before the store closes.
import type { AddressInfo } from 'node:net';
import { TcplensError } from '../errors.js';
import { onCleanup } from '../lifecycle.js';
import { AgentRuns } from './agent-runs.js';
import { BUS_CONSUMER_DEFAULTS, BusConsumer } from './bus/consumer.js';
import { busIngest } from './bus/ingest.js';
import { CollectorMetrics } from './metrics.js';
import { createCollectorServer } from './server.js';
import { openStore, type StoreSpec } from './store-url.js';

export interface CollectorServiceOptions {
  /** where events are stored: a DuckDB file path, or a store spec (--store) */
  db: string | StoreSpec;
  listen: { host: string; port: number };
  retentionMs: number;
  token: string | null;
  maxBodyBytes: number;
  /** also consume batches from this NATS JetStream stream (bus/consumer.ts) */
  bus?: { servers: string[]; stream: string; notice: (m: string) => void; fail: (e: TcplensError) => void };
}

export interface CollectorService {
  /** http://host:port, as agents and browsers reach it */
  url: string;
  /** Close the listener, then the store (also what a stop does). */
  close(): Promise<void>;
}

export async function startCollectorService(o: CollectorServiceOptions): Promise<CollectorService> {
  const store = await openStore(typeof o.db === 'string' ? { kind: 'duckdb', path: o.db } : o.db, { retentionMs: o.retentionMs });
  const releaseStore = onCleanup('collector store', () => store.close());
  const metrics = new CollectorMetrics(() => store.sizeBytes());
  for (const [agent, ms] of await store.agentsLastSeen()) metrics.seen(agent, ms);
  await store.enforceRetention();
  const agentRuns = await AgentRuns.open(store);
  const releaseRuns = onCleanup('collector agent reports', () => agentRuns.close());
  const server = createCollectorServer({ store, metrics, token: o.token, maxBodyBytes: o.maxBodyBytes, agentRuns });
  const where = o.listen.host.includes(':') ? `[${o.listen.host}]:${o.listen.port}` : `${o.listen.host}:${o.listen.port}`;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new TcplensError('TCPLENS_ERR_SYSCALL', `cannot listen on ${where}: ${e.code ?? e.message}`,
      e.code === 'EADDRINUSE' ? 'another process serves that port; pick another with --listen' : 'check the address is one of this host\'s')));
    server.listen(o.listen.port, o.listen.host, () => resolve());
  });
  const closeServer = () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
  const releaseServer = onCleanup('collector listener', closeServer);
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  const consumer = o.bus && new BusConsumer({ ...BUS_CONSUMER_DEFAULTS, ...o.bus }, busIngest({ store, metrics, agentRuns, maxBodyBytes: o.maxBodyBytes }));
  const releaseBus = consumer ? onCleanup('collector bus consumer', () => consumer.close()) : () => {};
  let closed: Promise<void> | null = null;
  return {
    url,
    close: () => closed ??= (async () => {
      releaseServer();
      await closeServer();
      releaseBus();
      await consumer?.close();
      releaseRuns();
      await agentRuns.close();
      releaseStore();
      await store.close();
    })(),
  };
}
