// Load for benchmarks: open-and-close TCP connections to host:port, `concurrency` at a time, for
// `seconds`; print how many completed. Bounded in count and time; stops by itself.
import { connect } from 'node:net';

const [host, port, seconds, concurrency] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5] ?? 32)];
const end = Date.now() + seconds * 1000;
let done = 0, failed = 0;

function one(): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.on('error', () => { failed++; resolve(); });
    s.on('close', () => resolve());
    s.on('data', () => undefined);
    s.on('end', () => { done++; s.destroy(); });
  });
}

async function worker(): Promise<void> {
  while (Date.now() < end && done < 5_000_000) await one();
}

await Promise.all(Array.from({ length: concurrency }, worker));
process.stdout.write(`${JSON.stringify({ done, failed, seconds })}\n`);
