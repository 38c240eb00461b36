// The demo's accel exchange: one local TCP connection between two processes, both in the caller's
// cgroup and network namespace: a forked server writes BYTES in 64 KiB chunks, this process reads
// them into one reused buffer (so the figure is the connection's, not the garbage collector's).
// Prints one JSON line: the bytes sent (what accel's counters must match) and the throughput.
//   node accel-exchange.js BYTES
import { fork } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';

const CHUNK = Buffer.alloc(64 << 10, 'x');

function serve(total: number): void {
  const server = createServer(async (s: Socket) => {
    for (let sent = 0; sent < total; sent += CHUNK.length) if (!s.write(CHUNK)) await once(s, 'drain');
    s.end(() => server.close());
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
}

async function receive(total: number): Promise<void> {
  const child = fork(process.argv[1], ['serve', String(total)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [port] = await once(child, 'message') as [number];
  child.disconnect();
  let got = 0;
  const t0 = performance.now();
  const c = connect({ port, host: '127.0.0.1', onread: { buffer: Buffer.alloc(1 << 20), callback: (n) => { got += n; return true; } } });
  await once(c, 'end');
  const s = (performance.now() - t0) / 1000;
  await once(child, 'exit');
  process.stdout.write(`${JSON.stringify({ sent: got, mbps: got / s / 1e6 })}\n`);
}

if (process.argv[2] === 'serve') serve(Number(process.argv[3]));
else await receive(Number(process.argv[2] ?? 256 << 20));
