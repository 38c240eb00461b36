// Load for the toa benchmark: open-and-close TCP connections to host:port, `concurrency` at a
// time, for `seconds`. Every `reportMs` it prints {t, done} (wall-clock ms, connections completed
// so far) so the caller can cut the run into slices; at the end {done, failed, seen}, where seen
// counts the addresses the server's replies named (each connection's reply names the address the
// server saw). Bounded in time; stops by itself.
import { connect } from 'node:net';

const [host, port, seconds, concurrency, reportMs] =
  [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5] ?? 32), Number(process.argv[6] ?? 0)];
const end = Date.now() + seconds * 1000;
let done = 0, failed = 0;
const seen: Record<string, number> = {};

function one(): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let reply = '';
    s.on('error', () => { failed++; resolve(); });
    s.on('close', () => resolve());
    s.on('data', (d) => { reply += d; });
    s.on('end', () => {
      done++;
      const addr = reply.trim().replace(/ \d+$/, '');
      seen[addr] = (seen[addr] ?? 0) + 1;
      s.destroy();
    });
  });
}

async function worker(): Promise<void> {
  while (Date.now() < end) await one();
}

const timer = reportMs > 0 ? setInterval(() => process.stdout.write(`${JSON.stringify({ t: Date.now(), done })}\n`), reportMs) : null;
await Promise.all(Array.from({ length: concurrency }, worker));
if (timer) clearInterval(timer);
process.stdout.write(`${JSON.stringify({ done, failed, seen })}\n`);
