// Benchmark of the ring buffer reader (src/kernel/ring-buffer.ts): events/s decoded into plain JS
// objects, consumer CPU (process.cpuUsage() over wall time, % of one core) and lost events, against
// two anchors measured in the same run on the same producer:
//   koffi-callback  libbpf's ring_buffer__new + ring_buffer__consume, one koffi callback per event
//   producer alone  the producer filling an empty ring with nobody consuming (the rate ceiling)
// The producer (bench/ring/ring-producer.bpf.c, BPF_PROG_TEST_RUN in batches) runs in a child
// process, paced to a target rate, so this process's CPU is the consumer's alone.
// Run as root: node dist/bench/ring/ring-reader.js [--quick] [--ring-mib N]
// (--ring-mib: ring size instead of the 4 MiB that accept uses too, to see how much of a loss is
// the ring's depth against scheduling stalls rather than the reader's speed)
import '../stdout-closed.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import { koffi, type Ptr } from '../../src/kernel/libbpf.js';
import { BpfObject } from '../../src/kernel/bpf-object.js';
import { objectPath } from '../../src/kernel/paths.js';
import { RingBufferReader } from '../../src/kernel/ring-buffer.js';
import { argsLayout, eventDecoder, ringCounters, type RingEvent } from './producer.js';

const quick = process.argv.includes('--quick');
const ringMib = Number(process.argv[process.argv.indexOf('--ring-mib') + 1] ?? 0) || 0;
const SECONDS = quick ? 1 : 3;
const GOAL_RATE = 3e6, GOAL_CPU = 30;
const BATCHED = ' +batch4096';

/** Where decoded events go. Like a sink that formats and forwards each event promptly, it keeps
 *  only the last WINDOW events alive (so the objects really are allocated) and checks order and
 *  gaps as it goes. `holdBatch` instead keeps up to 4096 events alive before letting them go, like
 *  a sink that batches: that is GC cost of the sink's making, shown in its own row. */
const WINDOW = 256;
class Sink {
  next = 0;
  delivered = 0;
  missing = 0;
  disorder = 0;
  holdBatch = false;
  private window: RingEvent[] = new Array(WINDOW);
  private batch: RingEvent[] = [];
  private w = 0;

  reset(next: number, holdBatch = false): void {
    this.flush();
    this.next = next;
    this.delivered = this.missing = this.disorder = 0;
    this.holdBatch = holdBatch;
  }

  push(ev: RingEvent): void {
    this.check(ev.seq);
    if (this.holdBatch) {
      if (this.batch.push(ev) >= 4096) this.batch = [];
    } else {
      this.window[this.w] = ev;
      this.w = (this.w + 1) & (WINDOW - 1);
    }
  }

  /** The reader alone: no object per event, only the order check on seq. */
  pushSeq(seq: number): void {
    this.check(seq);
  }

  flush(): void {
    this.batch = [];
    this.window.fill(undefined as unknown as RingEvent);
  }

  get count(): number {
    return this.delivered;
  }

  private check(seq: number): void {
    if (seq > this.next) this.missing += seq - this.next;
    else if (seq < this.next) this.disorder++;
    this.next = seq + 1;
    this.delivered++;
  }
}

interface Consumer { start(): void; stop(): Promise<void> }

/** The reader under test. */
function jsReader(obj: BpfObject, sink: Sink, decode: (dv: DataView, at: number) => RingEvent): Consumer {
  let r: RingBufferReader | null = null;
  // One handler for every row: a new closure per reader would cost the drain loop a deopt each time.
  const handler = (dv: DataView, off: number): void => sink.push(decode(dv, off));
  return {
    start: () => { r = new RingBufferReader(obj.map('events'), handler); r.start(); },
    stop: async () => { await r?.close(); r = null; },
  };
}

/** The reader with a handler that reads only seq: the reader's own cost, without decoding. */
function jsReaderSeqOnly(obj: BpfObject, sink: Sink): Consumer {
  const at = obj.struct('ring_event').offset('seq', 8);
  let r: RingBufferReader | null = null;
  const handler = (dv: DataView, off: number): void => sink.pushSeq(dv.getUint32(off + at, true) + dv.getUint32(off + at + 4, true) * 4294967296);
  return {
    start: () => { r = new RingBufferReader(obj.map('events'), handler); r.start(); },
    stop: async () => { await r?.close(); r = null; },
  };
}

/** The anchor: libbpf's own ring_buffer consumer calling back into JS once per event. Bench-only
 *  bindings: the project never uses this path (KERNEL-NOTES: it tops out near 0.8 M/s). */
function koffiCallback(obj: BpfObject, sink: Sink, decode: (dv: DataView, at: number) => RingEvent): Consumer {
  const lib = koffi.load('libbpf.so.1');
  const SampleFn = koffi.proto('int tcplens_bench_ring_sample_fn(void *ctx, void *data, size_t size)');
  const rbNew = lib.func('void *ring_buffer__new(int map_fd, tcplens_bench_ring_sample_fn *cb, void *ctx, void *opts)');
  const rbConsume = lib.func('int ring_buffer__consume(void *rb)');
  const rbFree = lib.func('void ring_buffer__free(void *rb)');
  let rb: Ptr = 0n;
  let cb: unknown = null;
  let timer: NodeJS.Timeout | null = null;
  const tick = (): void => {
    rbConsume(rb);
    timer = setTimeout(tick, 1);
  };
  return {
    start: () => {
      cb = koffi.register((_ctx: unknown, data: Ptr, size: number | bigint) => {
        sink.push(decode(new DataView(koffi.view(data, Number(size))), 0));
        return 0;
      }, koffi.pointer(SampleFn));
      rb = rbNew(obj.map('events').fd, cb, null, null) as Ptr;
      if (!rb) throw new Error('ring_buffer__new failed');
      tick();
    },
    stop: async () => {
      if (timer) clearTimeout(timer);
      rbConsume(rb);
      rbFree(rb);
      koffi.unregister(cb as never);
    },
  };
}

/** The producer child: one JSON command per line, one JSON answer per line. */
class ProducerChild {
  private readonly child: ChildProcess;
  private readonly pending: ((v: Record<string, number>) => void)[] = [];

  constructor(progFd: number) {
    const script = join(dirname(fileURLToPath(import.meta.url)), 'producer-child.js');
    this.child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit', progFd] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => this.pending.shift()?.(JSON.parse(l)));
  }

  ask(cmd: Record<string, unknown>): Promise<Record<string, number>> {
    return new Promise((resolve) => {
      this.pending.push(resolve);
      this.child.stdin!.write(JSON.stringify(cmd) + '\n');
    });
  }

  end(): void {
    this.child.stdin!.end();
  }
}

/** CPU time of the whole machine (all CPUs, busy only), in microseconds, from /proc/stat. */
function machineBusyUs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return ((user + nice + system + irq + softirq + steal) * 1e6) / 100; // USER_HZ is 100 on Linux
}

interface Row {
  consumer: string; target: number; delivered: number; rate: number; cpuPct: number; cpuNsPerEvent: number;
  lost: number; producerCpuPct: number; producerRate: number;
  /** CPU used by everything else on the machine meanwhile (other processes), % of one core */
  othersPct: number;
}

async function main(): Promise<void> {
  const obj = BpfObject.open(objectPath('bench/ring/ring-producer'));
  if (process.argv.includes('--ring-mib')) obj.setMaxEntries('events', ringMib << 20);
  obj.load();
  const ringBytes = obj.map('events').maxEntries;
  const eventSize = obj.struct('ring_event').size;
  const slot = (eventSize + 8 + 7) & ~7;
  const decode = eventDecoder(obj);
  const sink = new Sink();
  const child = new ProducerChild(obj.program('produce').fd);
  await child.ask({ op: 'init', layout: argsLayout(obj), eventSize });
  let seqBase = 0;

  // Warm up both consumers' code paths (JIT) before measuring.
  const consumers: Record<string, Consumer> = {
    'js-mmap': jsReader(obj, sink, decode),
    'js-mmap seq-only': jsReaderSeqOnly(obj, sink),
    'koffi-callback': koffiCallback(obj, sink, decode),
  };

  async function scenario(name: string, target: number, seconds: number): Promise<Row> {
    const holdBatch = name.endsWith(BATCHED);
    const consumer = consumers[holdBatch ? name.slice(0, -BATCHED.length) : name];
    sink.reset(seqBase, holdBatch);
    const lost0 = ringCounters(obj).lost;
    consumer.start();
    await sleep(20);
    const cpu0 = process.cpuUsage();
    const busy0 = machineBusyUs();
    const t0 = process.hrtime.bigint();
    const rep = await child.ask({ op: 'run', seqBase, rate: target, seconds });
    const deadline = Date.now() + 3000;
    while (sink.count < rep.emitted && Date.now() < deadline) await sleep(1);
    const wallNs = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(cpu0);
    const busyUs = machineBusyUs() - busy0;
    await consumer.stop();
    sink.flush();
    seqBase += rep.sent;
    if (sink.next < seqBase) sink.missing += seqBase - sink.next; // lost at the very end: no later seq shows the gap
    const lost = ringCounters(obj).lost - lost0;
    const cpuUs = cpu.user + cpu.system;
    if (sink.disorder) throw new Error(`${name}: ${sink.disorder} events out of order`);
    if (sink.missing !== lost) throw new Error(`${name}: ${sink.missing} seq gaps but the kernel counted ${lost} lost`);
    return {
      consumer: name, target, delivered: sink.delivered, rate: sink.delivered / (wallNs / 1e9),
      cpuPct: (100 * cpuUs * 1000) / wallNs, cpuNsPerEvent: sink.delivered ? (cpuUs * 1000) / sink.delivered : 0, lost,
      producerCpuPct: (100 * rep.cpuUs * 1000) / rep.wallNs, producerRate: rep.sent / (rep.wallNs / 1e9),
      othersPct: Math.max(0, (100 * (busyUs - cpuUs - rep.cpuUs) * 1000) / wallNs),
    };
  }

  const print = (r: Row): void => {
    const t = r.target ? (r.target / 1e6).toFixed(2) : 'max';
    console.log(`${r.consumer.padEnd(20)} ${t.padStart(6)} ${(r.producerRate / 1e6).toFixed(2).padStart(9)} ${(r.rate / 1e6).toFixed(2).padStart(9)}` +
      ` ${r.cpuPct.toFixed(1).padStart(7)} ${r.cpuNsPerEvent.toFixed(0).padStart(7)} ${String(r.lost).padStart(9)} ${r.producerCpuPct.toFixed(0).padStart(9)} ${r.othersPct.toFixed(0).padStart(8)}`);
  };

  // Producer alone: fill the empty ring in one run with nobody consuming; best of five.
  // The kernel keeps the ring from filling to the last byte: one slot less than ring/slot fits.
  const capacity = Math.floor(ringBytes / slot) - 1;
  const drainer = new RingBufferReader(obj.map('events'), () => {});
  let bestNs = Infinity;
  for (let i = 0; i < 5; i++) {
    drainer.drain();
    const f = await child.ask({ op: 'fill', seqBase: 0, count: capacity });
    if (f.failed) throw new Error('fill overflowed the ring');
    bestNs = Math.min(bestNs, f.wallNs / f.emitted);
  }
  drainer.drain();
  await drainer.close();
  const producerAlone = 1e9 / bestNs;

  console.log(`ring reader benchmark: ${eventSize}-byte events (${slot} with header), ${ringBytes >> 20} MiB ring, ` +
    `decoded into a plain object per event; ${SECONDS} s per row; producer in a child process`);
  console.log(`producer alone (empty ring, nobody consuming): ${(producerAlone / 1e6).toFixed(2)} M events/s (${bestNs.toFixed(0)} ns/event)`);
  console.log('consumer             target  produced  consumed    CPU%  CPUns/ev      lost  prodCPU%  others%');
  console.log('                      M/s       M/s       M/s  (1 core)                                (rest of machine)');

  // Warm-up (not reported)
  await scenario('js-mmap', 1e6, 0.5);
  await scenario('koffi-callback', 2e5, 0.5);

  const rows: Row[] = [];
  const ladder = async (name: string, rates: number[], seconds = SECONDS): Promise<void> => {
    for (const rate of rates) {
      const r = await scenario(name, rate, rate === GOAL_RATE && name === 'js-mmap' ? seconds + 2 : seconds);
      rows.push(r);
      print(r);
    }
  };
  await ladder('js-mmap', quick ? [GOAL_RATE, 0] : [1e6, 2e6, GOAL_RATE, 4e6, 6e6, 8e6, 0]);
  await ladder('js-mmap' + BATCHED, [GOAL_RATE]);
  await ladder('js-mmap seq-only', [GOAL_RATE, 0]);
  await ladder('koffi-callback', quick ? [5e5, 0] : [2.5e5, 5e5, 7.5e5, 1e6, 0], quick ? SECONDS : 2);
  child.end();
  obj.close();

  // Max sustained rate with zero loss: the highest paced row that lost nothing and kept up (>= 95% of target).
  const maxZeroLoss = (name: string): Row | undefined => rows
    .filter((r) => r.consumer === name && r.lost === 0 && r.rate >= 0.95 * (r.target || r.producerRate))
    .sort((a, b) => b.rate - a.rate)[0];
  const js = maxZeroLoss('js-mmap'), cb = maxZeroLoss('koffi-callback');
  const atGoal = rows.find((r) => r.consumer === 'js-mmap' && r.target === GOAL_RATE)!;
  const cbRef = rows.filter((r) => r.consumer === 'koffi-callback' && r.target > 0 && r.lost === 0).sort((a, b) => b.rate - a.rate)[0];
  const jsFlat = rows.find((r) => r.consumer === 'js-mmap' && r.target === 0)!;
  console.log('');
  console.log(`goal: >= ${GOAL_RATE / 1e6} M/s at <= ${GOAL_CPU}% of a core, zero loss -> at ${GOAL_RATE / 1e6} M/s: ${atGoal.cpuPct.toFixed(1)}% CPU, ` +
    `lost ${atGoal.lost}: ${atGoal.cpuPct <= GOAL_CPU && atGoal.lost === 0 && atGoal.rate >= 0.95 * GOAL_RATE ? 'MET' : 'NOT MET'}`);
  console.log(`ratios: js-mmap max zero-loss ${fmt(js?.rate)} M/s = ${ratio(js?.rate, cb?.rate)} koffi-callback (${fmt(cb?.rate)} M/s); ` +
    `CPU per event ${ratio(atGoal.cpuNsPerEvent, cbRef?.cpuNsPerEvent)} of koffi-callback (${atGoal.cpuNsPerEvent.toFixed(0)} vs ${cbRef ? cbRef.cpuNsPerEvent.toFixed(0) : '-'} ns); ` +
    `js-mmap flat out ${fmt(jsFlat.rate)} M/s = ${ratio(jsFlat.rate, producerAlone)} of producer alone (${fmt(producerAlone)} M/s), lost ${jsFlat.lost}`);
  const busiest = Math.max(...rows.map((r) => r.othersPct));
  if (busiest > 20) {
    console.log(`warning: other processes used up to ${busiest.toFixed(0)}% of a core during a row (2 vCPUs here): ` +
      'losses and rates are then not the reader\'s own; run again on a quiet machine');
  }
}

function fmt(v: number | undefined): string {
  return v === undefined ? '-' : (v / 1e6).toFixed(2);
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || !b ? '-' : `${(a / b).toFixed(2)}x`;
}

await main();
