// Real nats-server processes (Debian's) for bus tests: one node, or a JetStream cluster of three
// with file storage, on free loopback ports, their store dirs in a temp dir. Nodes can be killed
// with SIGKILL and started again on the same ports and store (that is how a node comes back).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { freePort } from './collector-process.js';

export interface NatsNode { name: string; port: number; url: string; conf: string; proc: ChildProcess | null; log: string }

export interface NatsCluster {
  nodes: NatsNode[];
  /** every node's client URL, comma-separated, as --bus takes them */
  bus: string;
  kill9(name: string): Promise<void>;
  start(name: string): Promise<void>;
  /** the server name leading a stream's replicas (null: none right now) */
  streamLeader(stream: string): Promise<string | null>;
  /** waits (at most ms) until a stream's consumer has handed out every message and seen each acknowledged */
  drained(stream: string, consumer: string, ms: number): Promise<void>;
  /** runs fn with a JetStream manager on a connection to the cluster */
  withJsm<T>(fn: (jsm: JetStreamManager) => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

// Debian puts it in /usr/sbin, which a non-root PATH may lack.
const NATS_SERVER = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startNats(dir: string, size: 1 | 3): Promise<NatsCluster> {
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort() })));
  const nodes: NatsNode[] = ports.map((p, i) => {
    const name = `n${i + 1}`;
    const store = join(dir, name);
    mkdirSync(store, { recursive: true });
    const routes = ports.filter((_, j) => j !== i).map((q) => `nats-route://127.0.0.1:${q.route}`);
    const conf = join(dir, `${name}.conf`);
    writeFileSync(conf, [
      `server_name: ${name}`, `listen: 127.0.0.1:${p.client}`, `jetstream { store_dir: "${store}" }`,
      ...(size > 1 ? [`cluster { name: tcplens-test, listen: 127.0.0.1:${p.route}, routes: [${routes.join(', ')}] }`] : []),
    ].join('\n'));
    return { name, port: p.client, url: `nats://127.0.0.1:${p.client}`, conf, proc: null, log: '' };
  });
  const startNode = async (n: NatsNode) => {
    const proc = spawn(NATS_SERVER, ['-c', n.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    n.proc = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => { n.log = (n.log + d).slice(-20_000); });
    const deadline = Date.now() + 15_000;
    while (!/Server is ready/.test(n.log)) {
      if (proc.exitCode !== null) throw new Error(`nats-server ${n.name} exited: ${n.log}`);
      if (Date.now() > deadline) throw new Error(`nats-server ${n.name} not ready: ${n.log}`);
      await sleep(50);
    }
  };
  const kill9 = async (name: string) => {
    const n = nodes.find((x) => x.name === name)!;
    const p = n.proc;
    n.proc = null;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = once(p, 'exit');
      p.kill('SIGKILL');
      await gone;
    }
  };
  const bus = nodes.map((n) => n.url).join(',');
  const withJsm = async <T>(fn: (jsm: JetStreamManager) => Promise<T>): Promise<T> => {
    const nc = await connect({ servers: nodes.filter((n) => n.proc).map((n) => n.url), timeout: 3000 });
    try {
      return await fn(await jetstreamManager(nc, { timeout: 3000 }));
    } finally {
      await nc.close();
    }
  };
  const drained = async (stream: string, consumer: string, ms: number) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = await withJsm(async (jsm) => {
        const c = await jsm.consumers.info(stream, consumer);
        return c.num_pending + c.num_ack_pending;
      }).catch(() => -1);
      if (left === 0) return;
      if (Date.now() > deadline) throw new Error(`consumer ${consumer} of ${stream} still has ${left} messages pending after ${ms} ms`);
      await sleep(50);
    }
  };
  const cluster: NatsCluster = {
    nodes, bus, kill9, withJsm, drained,
    start: (name) => startNode(nodes.find((x) => x.name === name)!),
    streamLeader: (stream) => withJsm(async (jsm) => (await jsm.streams.info(stream)).cluster?.leader ?? null).catch(() => null),
    stop: async () => { for (const n of nodes) await kill9(n.name); },
  };
  try {
    await Promise.all(nodes.map(startNode));
    // Ready for streams once JetStream answers (a cluster first elects its meta leader).
    for (let i = 0; ; i++) {
      const ok = await withJsm((jsm) => jsm.getAccountInfo()).then(() => true, () => false);
      if (ok) break;
      if (i > 100) throw new Error(`JetStream never became ready: ${nodes.map((n) => n.log).join('\n')}`);
      await sleep(200);
    }
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}
