// The benchmark's producer, in its own process so that the consumer's process.cpuUsage() counts
// only the consumer. It gets the program fd as fd 3 from the parent and takes one JSON command per
// line on stdin; it answers one JSON line on stdout per command.
//   {"op":"init","layout":{...},"eventSize":120}
//   {"op":"run","seqBase":0,"rate":3e6,"seconds":3}     rate 0 = flat out
//   {"op":"fill","seqBase":0,"count":32768}              one run into the ring, timed
import { createInterface } from 'node:readline';
import { Producer, type ArgsLayout } from './producer.js';

const PROG_FD = 3;
const MAX_BATCH = 4096;
/** A paced producer sleeps until this long's worth of events is due, then emits them in one run. */
const PACE_US = 200;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

let producer: Producer | null = null;

function sleepUs(us: number): void {
  Atomics.wait(sleeper, 0, 0, us / 1000);
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Emit at `rate` events/s (0: as fast as the program runs) for `seconds`, in batches. */
function run(p: Producer, seqBase: number, rate: number, seconds: number): Record<string, number> {
  const cpu0 = cpuUs();
  const t0 = process.hrtime.bigint();
  const endNs = seconds * 1e9;
  let sent = 0, emitted = 0, failed = 0, runs = 0;
  for (;;) {
    const elapsed = Number(process.hrtime.bigint() - t0);
    if (elapsed >= endNs) break;
    let k = MAX_BATCH;
    if (rate > 0) {
      const due = Math.floor((rate * elapsed) / 1e9) - sent;
      const minBatch = Math.max(1, Math.floor((rate * PACE_US) / 1e6));
      if (due < minBatch) {
        sleepUs(((minBatch - due) / rate) * 1e6);
        continue;
      }
      k = Math.min(MAX_BATCH, due);
    }
    const r = p.runSync({ seqBase: seqBase + sent, count: k });
    sent += k;
    emitted += r.emitted;
    failed += r.failed;
    runs++;
  }
  const wallNs = Number(process.hrtime.bigint() - t0);
  return { sent, emitted, failed, runs, wallNs, cpuUs: cpuUs() - cpu0 };
}

function fill(p: Producer, seqBase: number, count: number): Record<string, number> {
  const t0 = process.hrtime.bigint();
  const r = p.runSync({ seqBase, count });
  return { emitted: r.emitted, failed: r.failed, wallNs: Number(process.hrtime.bigint() - t0) };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = JSON.parse(line) as { op: string; layout?: ArgsLayout; eventSize?: number; seqBase?: number; rate?: number; seconds?: number; count?: number };
  let reply: Record<string, number> = {};
  if (cmd.op === 'init') producer = new Producer(PROG_FD, cmd.layout!, cmd.eventSize);
  else if (!producer) throw new Error('producer child: init first');
  else if (cmd.op === 'run') reply = run(producer, cmd.seqBase!, cmd.rate!, cmd.seconds!);
  else if (cmd.op === 'fill') reply = fill(producer, cmd.seqBase!, cmd.count!);
  process.stdout.write(JSON.stringify(reply) + '\n');
});
