// Events/s end to end through the NATS bus, against the embedded HTTP path in the same run:
//   http     AGENTS shippers (CollectorShipper, HTTP transport) -> one `tcplens collector` child ->
//            DuckDB; timed from the first record to the last batch acknowledged (= stored)
//   bus      AGENTS shippers (NATS transport) -> NODES nats-server (JetStream, file storage,
//            R = NODES up to 3) -> COLLECTORS `tcplens collector --bus` children -> DuckDB; timed
//            from the first record to the shared consumer having every batch acknowledged (= stored)
//   catch-up the collectors stopped, the same load published (bus alone: publish rate), then the
//            collectors started again: backlog events / time until the consumer is drained
//   node dist/bench/collector/bus-rate.js [events=200000] [agents=4] [nodes=3] [collectors=1]
import '../stdout-closed.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CollectorShipper, SHIPPER_DEFAULTS } from '../../src/collector/agent.js';
import { BUS_MAX_BATCH_BYTES, BusPublisher } from '../../src/collector/bus/publisher.js';
import { DURABLE, parseBusUrls } from '../../src/collector/bus/names.js';
import { startCollector, type Collector } from '../../test/helpers/collector-process.js';
import { acceptRecord } from '../../test/helpers/collector-records.js';
import { startNats, type NatsCluster } from '../../test/helpers/nats-cluster.js';

const total = Number(process.argv[2] ?? 200_000);
const agents = Number(process.argv[3] ?? 4);
const nodes = Number(process.argv[4] ?? 3) === 1 ? 1 : 3;
const collectors = Number(process.argv[5] ?? 1);
const per = Math.ceil(total / agents);
const events = per * agents;
const dir = mkdtempSync(join(tmpdir(), 'tcplens-bench-bus-'));
const records = Array.from({ length: 1000 }, (_, i) => acceptRecord(i));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let round = 0;

type Make = (name: string) => CollectorShipper<object>;

/** AGENTS shippers write their share in slices (as a busy agent would), then drain. */
async function ship(make: Make): Promise<void> {
  round++;
  await Promise.all(Array.from({ length: agents }, async (_, a) => {
    const s = make(`bench-${round}-${a}`);
    for (let i = 0; i < per;) {
      for (const end = Math.min(per, i + 2000); i < end; i++) s.write(records[i % records.length]);
      await new Promise((r) => setImmediate(r));
    }
    const st = await s.drain(600_000);
    if (st.acked !== per) throw new Error(`agent ${a}: ${JSON.stringify(st)}`);
  }));
}

const opts = { ...SHIPPER_DEFAULTS, capability: 'accept', token: null, maxBatchBytes: BUS_MAX_BATCH_BYTES, notice: () => {} };

async function busCollectors(n: NatsCluster, tag: string): Promise<Collector[]> {
  const cs = await Promise.all(Array.from({ length: collectors }, (_, i) => startCollector(join(dir, `bus-${tag}-${i}.duckdb`), { args: ['--bus', n.bus] })));
  for (const c of cs) while (!/consuming as/.test(c.stderr())) await sleep(20);
  return cs;
}

try {
  const c = await startCollector(join(dir, 'http.duckdb'));
  let t0 = performance.now();
  await ship((name) => new CollectorShipper<object>({ ...opts, url: c.url, agentName: name }));
  const http = events / ((performance.now() - t0) / 1000);
  await c.stop();

  const n = await startNats(join(dir, 'nats'), nodes as 1 | 3);
  try {
    const servers = parseBusUrls(n.bus);
    const viaBus: Make = (name) => new CollectorShipper<object>({ ...opts, agentName: name, transport: new BusPublisher({ servers, stream: 'tcplens', agentName: name, timeoutMs: 5000 }) });
    let cs = await busCollectors(n, 'a');
    t0 = performance.now();
    await ship(viaBus);
    await n.drained('tcplens', DURABLE, 600_000);
    const bus = events / ((performance.now() - t0) / 1000);
    for (const x of cs) await x.stop();

    t0 = performance.now();
    await ship(viaBus);
    const publish = events / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    cs = await busCollectors(n, 'b');
    await n.drained('tcplens', DURABLE, 600_000);
    const catchUp = events / ((performance.now() - t0) / 1000);
    for (const x of cs) await x.stop();

    const k = (x: number) => `${Math.round(x / 1000)}k/s`;
    console.log(`end to end, ${events} accept events from ${agents} agents; bus: ${nodes} nats-server node(s), R${Math.min(3, nodes)} file storage, ${collectors} collector(s)`);
    console.log(`  anchor: agents -> HTTP -> collector -> DuckDB          ${k(http)}`);
    console.log(`  bus:    agents -> NATS -> collector(s) -> DuckDB        ${k(bus)}  (${(bus / http).toFixed(2)} x anchor)`);
    console.log(`  bus publish alone (collectors stopped)                  ${k(publish)}  (${(publish / http).toFixed(2)} x anchor)`);
    console.log(`  catch-up: backlog of ${events} drained by fresh collector(s) ${k(catchUp)}  (${(catchUp / http).toFixed(2)} x anchor)`);
  } finally {
    await n.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
