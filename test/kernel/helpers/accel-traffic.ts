// Child process for the accel tests and bench: opens many local TCP connections (client and
// server in this one process, so both ends are in the caller's cgroup), then both ends of every
// connection send random data at once, in writes of random sizes, and hash what they send and
// what they get. Prints one JSON line: totals and the connections whose bytes did not match.
//
// argv[2] is a JSON TrafficPlan. With waitGo, it prints "ready" once every connection is
// established and waits for a line on stdin before sending.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

export interface TrafficPlan {
  conns: number;
  /** address the server listens on and the clients connect to */
  host: string;
  listenHost?: string;
  port?: number;
  /** fixed client port (only with conns 1), to make two namespaces use the same 4-tuple */
  clientPort?: number;
  /** bytes each end sends: 'mixed' (1 byte .. several MB, a few huge), or exactly n */
  size: 'mixed' | number;
  /** send for this long instead of a size (both ends), then half-close */
  durationMs?: number;
  waitGo?: boolean;
  /** stagger connects a little so the listener's backlog holds */
  batch?: number;
}

export interface TrafficResult { conns: number; sent: number; received: number; bad: string[]; errors: string[]; ms: number }

const POOL = randomBytes(16 << 20);
const plan = JSON.parse(process.argv[2]) as TrafficPlan;

function rnd(n: number): number { return Math.floor(Math.random() * n); }

function totalSize(): number {
  if (plan.size !== 'mixed') return plan.size;
  const r = Math.random();
  if (r < 0.6) return 1 + rnd(4096);
  if (r < 0.95) return 4096 + rnd(256 << 10);
  return (1 << 20) + rnd(7 << 20);
}

function writeSize(left: number): number {
  const r = Math.random();
  const n = r < 0.7 ? 1 + rnd(1500) : r < 0.97 ? 1 + rnd(64 << 10) : 1 + rnd(4 << 20);
  return Math.min(n, left);
}

interface End { sentHash: ReturnType<typeof createHash>; recvHash: ReturnType<typeof createHash>; sent: number; received: number; done: Promise<void> }

/** Send (a size, or until the deadline) and read until EOF, hashing both ways. */
function drive(sock: Socket, deadline: number | null): End {
  const end: End = { sentHash: createHash('sha256'), recvHash: createHash('sha256'), sent: 0, received: 0, done: Promise.resolve() };
  let left = deadline === null ? totalSize() : Infinity;
  const sending = new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      for (;;) {
        if (left <= 0 || (deadline !== null && Date.now() >= deadline)) {
          sock.end();
          resolve();
          return;
        }
        const n = writeSize(left === Infinity ? 1 << 30 : left);
        const off = rnd(POOL.length - n);
        const chunk = POOL.subarray(off, off + n);
        end.sentHash.update(chunk);
        end.sent += n;
        left -= n;
        if (!sock.write(chunk)) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    sock.once('error', reject);
    pump();
  });
  const reading = new Promise<void>((resolve, reject) => {
    sock.on('data', (d: Buffer) => { end.recvHash.update(d); end.received += d.length; });
    sock.once('end', resolve);
    sock.once('error', reject);
  });
  end.done = Promise.all([sending, reading]).then(() => undefined);
  return end;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const accepted = new Map<number, Socket>();
  const waiting = new Map<number, (s: Socket) => void>();
  const server = createServer({ noDelay: true, allowHalfOpen: true }, (s) => {
    const port = s.remotePort!;
    const w = waiting.get(port);
    if (w) w(s); else accepted.set(port, s);
  });
  server.maxConnections = plan.conns + 10;
  await new Promise<void>((r) => server.listen({ host: plan.listenHost ?? plan.host, port: plan.port ?? 0, backlog: 4096 }, r));
  const port = (server.address() as { port: number }).port;
  const pairs: { id: string; client: Socket; server: Socket }[] = [];
  const batch = plan.batch ?? 50;
  for (let i = 0; i < plan.conns; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, plan.conns - i) }, async (_, j) => {
      const client = connect({ host: plan.host, port, noDelay: true, allowHalfOpen: true, localPort: plan.clientPort });
      await new Promise<void>((r, e) => { client.once('connect', r); client.once('error', e); });
      const lp = client.localPort!;
      const srv = accepted.get(lp) ?? await new Promise<Socket>((r) => waiting.set(lp, r));
      accepted.delete(lp);
      waiting.delete(lp);
      pairs.push({ id: `${i + j}:${lp}`, client, server: srv });
    }));
  }
  if (plan.waitGo) {
    process.stdout.write('ready\n');
    await new Promise<void>((r) => createInterface({ input: process.stdin }).once('line', () => r()));
    if (process.env.ACCEL_TRAFFIC_DEBUG) process.stderr.write('go\n');
  }
  const deadline = plan.durationMs ? Date.now() + plan.durationMs : null;
  const errors: string[] = [];
  const ends = pairs.map((p) => ({ p, c: drive(p.client, deadline), s: drive(p.server, deadline) }));
  if (process.env.ACCEL_TRAFFIC_DEBUG) {
    setTimeout(() => {
      for (const e of ends) process.stderr.write(`${e.p.id} c ${e.c.sent}/${e.c.received} s ${e.s.sent}/${e.s.received} rE ${e.p.client.readableEnded}/${e.p.server.readableEnded} wE ${e.p.client.writableEnded}/${e.p.server.writableEnded} wF ${e.p.client.writableFinished}/${e.p.server.writableFinished}\n`);
    }, 3000).unref();
  }
  await Promise.all(ends.map(async (e) => {
    try { await Promise.all([e.c.done, e.s.done]); } catch (err) { errors.push(`${e.p.id}: ${(err as Error).message}`); }
  }));
  if (process.env.ACCEL_TRAFFIC_DEBUG) process.stderr.write('traffic done\n');
  const bad: string[] = [];
  let sent = 0, received = 0;
  for (const e of ends) {
    sent += e.c.sent + e.s.sent;
    received += e.c.received + e.s.received;
    const c2s = e.c.sentHash.digest('hex') === e.s.recvHash.digest('hex') && e.c.sent === e.s.received;
    const s2c = e.s.sentHash.digest('hex') === e.c.recvHash.digest('hex') && e.s.sent === e.c.received;
    if (!c2s || !s2c) bad.push(`${e.p.id}: client->server ${e.c.sent}/${e.s.received}${c2s ? '' : ' MISMATCH'}, server->client ${e.s.sent}/${e.c.received}${s2c ? '' : ' MISMATCH'}`);
  }
  server.close();
  const out: TrafficResult = { conns: pairs.length, sent, received, bad, errors, ms: Date.now() - t0 };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

main().catch((e) => {
  process.stdout.write(`${JSON.stringify({ conns: 0, sent: 0, received: 0, bad: [], errors: [String(e?.stack ?? e)], ms: 0 })}\n`);
  process.exit(1);
});
