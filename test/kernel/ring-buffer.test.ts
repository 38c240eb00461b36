// The ring buffer reader against a real BPF ring (root). The producer is
// bench/ring/ring-producer.bpf.c run with BPF_PROG_TEST_RUN; its async form runs on a koffi worker
// thread, so the reader consumes on the JS thread while the kernel produces.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { BpfObject } from '../../src/kernel/bpf-object.js';
import { objectPath, repoRoot } from '../../src/kernel/paths.js';
import { RingBufferReader } from '../../src/kernel/ring-buffer.js';
import { Producer, eventDecoder, expectedRecord, ringCounters, type ProduceResult, type RingEvent } from '../../bench/ring/producer.js';

const SMALL_RING = 16 * 1024;
/** Per test: a reader that hangs (in close(), say) fails its own test, not the whole file. */
const T = { timeout: 10_000 };

interface Rig {
  obj: BpfObject;
  producer: Producer;
  decode: (dv: DataView, at: number) => RingEvent;
  ringBytes: number;
  /** offset of ts_ns inside ring_event: the one field not derived from seq */
  tsAt: number;
}

async function withRig(ringBytes: number | null, body: (rig: Rig) => Promise<void>): Promise<void> {
  const obj = BpfObject.open(objectPath('bench/ring/ring-producer'));
  try {
    if (ringBytes) obj.setMaxEntries('events', ringBytes);
    obj.load();
    await body({ obj, producer: Producer.of(obj), decode: eventDecoder(obj), ringBytes: obj.map('events').maxEntries,
      tsAt: obj.struct('ring_event').offset('ts_ns', 8) });
  } finally {
    obj.close();
  }
}

/** Copies a record out of the ring, with where it sat. */
interface Got { seq: number; bytes: Buffer; offset: number; at: number }

function collector(rig: Rig, into: Got[]): (dv: DataView, off: number, len: number) => void {
  return (dv, off, len) => {
    into.push({ seq: rig.decode(dv, off).seq, bytes: Buffer.from(new Uint8Array(dv.buffer, off, len)), offset: off, at: performance.now() });
  };
}

/** Every byte as the producer wrote it; ts_ns is copied over (it is the kernel's clock). */
function assertIntact(rig: Rig, g: Got, length: number): void {
  const want = expectedRecord(rig.obj, BigInt(g.seq), length);
  want.set(g.bytes.subarray(rig.tsAt, rig.tsAt + 8), rig.tsAt);
  assert.equal(g.bytes.length, length, `record ${g.seq}: length`);
  assert.ok(Buffer.from(want).equals(g.bytes), `record ${g.seq} differs from what the producer wrote`);
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(1);
  }
}

test('records arrive in order, with the right content, none lost at a modest rate', { timeout: 20_000 }, async () => {
  await withRig(null, async (rig) => {
    const got: Got[] = [];
    const seen: RingEvent[] = [];
    const reader = new RingBufferReader(rig.obj.map('events'), (dv, off, len) => {
      const ev = rig.decode(dv, off);
      seen.push(ev);
      if (ev.seq % 97 === 0) got.push({ seq: ev.seq, bytes: Buffer.from(new Uint8Array(dv.buffer, off, len)), offset: off, at: 0 });
    });
    reader.start();
    try {
      const N = 200_000, BATCH = 2_000;
      for (let s = 0; s < N; s += BATCH) {
        const r = await rig.producer.run({ seqBase: s, count: BATCH });
        assert.equal(r.emitted, BATCH);
        // A modest rate: the next batch waits for the reader (a loaded machine slows the reader,
        // not the kernel, and a full ring is another test's subject).
        await until(() => seen.length >= s + BATCH, 5_000, `batch at ${s}`);
      }
      await until(() => seen.length >= N, 5_000, `${N} records`);
      assert.equal(seen.length, N);
      let lastTs = 0;
      for (let i = 0; i < N; i++) {
        const ev = seen[i];
        assert.equal(ev.seq, i, 'records out of order or missing');
        assert.equal(ev.count, 120);
        assert.equal(ev.local.port, i & 0xffff);
        assert.equal(ev.peer.family, 6);
        assert.ok(ev.tsNs >= lastTs, 'ts_ns went backwards');
        lastTs = ev.tsNs;
      }
      for (const g of got) assertIntact(rig, g, 120);
      assert.equal(ringCounters(rig.obj).lost, 0);
      assert.equal(reader.stats.records, N);
    } finally {
      await reader.close();
    }
  });
});

test('records that wrap around the end of the ring arrive intact', T, async () => {
  await withRig(SMALL_RING, async (rig) => {
    const got: Got[] = [];
    const reader = new RingBufferReader(rig.obj.map('events'), collector(rig, got));
    try {
      // Odd lengths (8-byte rounding) and slots that do not divide the ring, so records straddle its end.
      const sizes = [120, 123, 200, 256, 177, 129, 250];
      const lengthOf = new Map<number, number>();
      let seq = 0, straddled = 0;
      for (let round = 0; round < 400; round++) {
        const size = sizes[round % sizes.length];
        const count = 1 + (round % 40);
        const r = rig.producer.runSync({ seqBase: seq, count, size });
        assert.equal(r.failed, 0);
        for (let i = 0; i < count; i++) lengthOf.set(seq + i, size);
        seq += count;
        reader.drain();
      }
      assert.equal(got.length, seq);
      got.forEach((g, i) => {
        assert.equal(g.seq, i);
        assertIntact(rig, g, lengthOf.get(i)!);
        if (g.offset < rig.ringBytes && g.offset + g.bytes.length > rig.ringBytes) straddled++;
      });
      assert.ok(straddled >= 20, `only ${straddled} records straddled the end of the ring`);
      assert.equal(ringCounters(rig.obj).lost, 0);
    } finally {
      await reader.close();
    }
  });
});

test('discarded records are skipped', T, async () => {
  await withRig(64 * 1024, async (rig) => {
    const got: Got[] = [];
    const reader = new RingBufferReader(rig.obj.map('events'), collector(rig, got));
    reader.start();
    try {
      const N = 6_000;
      let discarded = 0;
      for (let s = 0; s < N; s += 300) {
        // 300 records take about 40 KiB of the 64 KiB ring: let the reader catch up between runs.
        const r = await rig.producer.run({ seqBase: s, count: 300, size: 136, discardEvery: 3 });
        assert.equal(r.failed, 0);
        discarded += r.discarded;
        await until(() => got.length >= s + 300 - discarded, 2_000, 'the committed records');
      }
      assert.equal(discarded, N / 3);
      await sleep(20);
      const want = [...Array(N).keys()].filter((s) => s % 300 % 3 !== 2);
      assert.deepEqual(got.map((g) => g.seq), want);
      for (const g of got) assertIntact(rig, g, 136);
      assert.equal(reader.stats.discarded, N / 3);
      assert.equal(ringCounters(rig.obj).lost, 0);
    } finally {
      await reader.close();
    }
  });
});

test('a record still being written holds back the records after it', T, async () => {
  await withRig(null, async (rig) => {
    const got: Got[] = [];
    const reader = new RingBufferReader(rig.obj.map('events'), collector(rig, got));
    reader.start();
    try {
      await sleep(20);
      const drains0 = reader.stats.drains;
      // A is committed, B is reserved and stays busy for 300 ms while C (after it) is committed.
      let committedAt = 0;
      const done = rig.producer.run({ seqBase: 10, count: 3, holdNs: 300_000_000 }).then(() => { committedAt = performance.now(); });
      await until(() => got.length >= 1, 1_000, 'record A');
      assert.equal(got[0].seq, 10);
      await done;
      await until(() => got.length >= 3, 1_000, 'records B and C');
      assert.deepEqual(got.map((g) => g.seq), [10, 11, 12], 'C was delivered before B was committed');
      // Margins are small against the 300 ms hold (bpf_loop caps how long the program can spin):
      // a loaded machine may wake the reader late for A, but never after B's commit.
      assert.ok(got[0].at < committedAt - 50, 'A should arrive while B is still busy');
      assert.ok(got[2].at - got[0].at >= 50, 'C arrived before B was committed');
      for (const g of got) assertIntact(rig, g, 120);
      // While B is busy the reader retries on its timer; it must not spin through epoll.
      const drains = reader.stats.drains - drains0;
      assert.ok(drains < 600, `${drains} drains during a 300 ms hold: the reader spins`);
    } finally {
      await reader.close();
    }
  });
});

test('a full ring counts lost events, and the reader recovers once it reads', T, async () => {
  await withRig(SMALL_RING, async (rig) => {
    const got: Got[] = [];
    const reader = new RingBufferReader(rig.obj.map('events'), collector(rig, got));
    try {
      // Nobody reads: 120-byte records take 128-byte slots; the kernel never fills the last one.
      const fits = SMALL_RING / 128 - 1;
      const r = rig.producer.runSync({ seqBase: 0, count: 300 });
      assert.equal(r.emitted, fits);
      assert.equal(r.failed, 300 - fits);
      assert.equal(ringCounters(rig.obj).lost, 300 - fits);
      assert.equal(reader.drain(), fits);
      assert.deepEqual(got.map((g) => g.seq), [...Array(fits).keys()]);

      reader.start();
      for (let s = 1000; s < 3000; s += 50) {
        // 50 records fill 40% of the ring: let the reader take them before the next run.
        assert.equal((await rig.producer.run({ seqBase: s, count: 50 })).failed, 0);
        await until(() => got.length >= fits + s + 50 - 1000, 2_000, 'records after the overflow');
      }
      assert.deepEqual(got.slice(fits).map((g) => g.seq), [...Array(2000).keys()].map((i) => 1000 + i));
      assert.equal(ringCounters(rig.obj).lost, 300 - fits, 'lost rose after the reader caught up');
    } finally {
      await reader.close();
    }
  });
});

test('a long drain hands space back to the kernel as it goes', T, async () => {
  await withRig(SMALL_RING, async (rig) => {
    const fits = SMALL_RING / 128 - 1;
    const refill: { result: ProduceResult | null } = { result: null };
    const seqs: number[] = [];
    const reader = new RingBufferReader(rig.obj.map('events'), (dv, off) => {
      seqs.push(rig.decode(dv, off).seq);
      // Halfway through a full ring, the producer runs again: only space the reader has already
      // published as consumed can take these.
      if (seqs.length === 64) refill.result = rig.producer.runSync({ seqBase: 1000, count: 20 });
    });
    try {
      assert.equal(rig.producer.runSync({ seqBase: 0, count: fits }).emitted, fits);
      reader.drain();
      assert.ok(refill.result, 'the handler did not run the producer');
      assert.equal(refill.result.failed, 0, 'the ring was still full halfway through the drain');
      reader.drain();
      assert.deepEqual(seqs, [...[...Array(fits).keys()], ...[...Array(20).keys()].map((i) => 1000 + i)]);
    } finally {
      await reader.close();
    }
  });
});

test('close() delivers what is left and returns promptly while the reader waits in epoll', T, async () => {
  await withRig(null, async (rig) => {
    const got: Got[] = [];
    const reader = new RingBufferReader(rig.obj.map('events'), collector(rig, got));
    reader.start();
    await sleep(100); // idle: waiting in epoll_wait on a worker thread
    // Produced on this thread: the reader cannot run before close(), which must hand these on.
    assert.equal(rig.producer.runSync({ seqBase: 0, count: 500 }).emitted, 500);
    const t0 = performance.now();
    await reader.close();
    const ms = performance.now() - t0;
    assert.ok(ms < 100, `close() took ${ms.toFixed(1)} ms`);
    assert.deepEqual(got.map((g) => g.seq), [...Array(500).keys()]);

    const idle = new RingBufferReader(rig.obj.map('events'), () => assert.fail('nothing was produced'));
    idle.start();
    await sleep(100);
    const t1 = performance.now();
    await idle.close();
    assert.ok(performance.now() - t1 < 100, 'close() of an idle reader is slow');
    await idle.close(); // twice is harmless
  });
});

test('a process whose reader was closed exits on its own (no epoll wait left behind)', T, () => {
  const script = `
    import { BpfObject } from './dist/src/kernel/bpf-object.js';
    import { objectPath } from './dist/src/kernel/paths.js';
    import { RingBufferReader } from './dist/src/kernel/ring-buffer.js';
    const obj = BpfObject.open(objectPath('bench/ring/ring-producer'));
    obj.load();
    const a = new RingBufferReader(obj.map('events'), () => {});
    a.start();
    await new Promise((r) => setTimeout(r, 100));
    await a.close();
    obj.close();
    console.log('closed');`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot, timeout: 10_000, encoding: 'utf8' });
  assert.equal(r.error, undefined, `the process did not exit by itself: ${r.error?.message}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /closed/);
  assert.ok(Date.now() - t0 < 5_000);
});

test('events produced after a long idle period arrive promptly (epoll wake-up), without polling while idle', { timeout: 15_000 }, async () => {
  await withRig(null, async (rig) => {
    const got: Got[] = [];
    const reader = new RingBufferReader(rig.obj.map('events'), collector(rig, got));
    reader.start();
    try {
      for (let round = 0; round < 3; round++) {
        await sleep(round === 0 ? 1_500 : 500);
        const drains0 = reader.stats.drains;
        const wakeups0 = reader.stats.wakeups;
        await sleep(500);
        assert.ok(reader.stats.drains - drains0 <= 1, `the reader drained ${reader.stats.drains - drains0} times while idle: it polls`);
        const t0 = performance.now();
        await rig.producer.run({ seqBase: round, count: 1 });
        await until(() => got.length > round, 1_000, 'the event after idling');
        const ms = got[round].at - t0;
        assert.ok(ms < 100, `an event after idling took ${ms.toFixed(1)} ms`);
        assert.equal(reader.stats.wakeups, wakeups0 + 1, 'not woken through epoll');
      }
      assert.deepEqual(got.map((g) => g.seq), [0, 1, 2]);
    } finally {
      await reader.close();
    }
  });
});

test('readers of two rings share one wait and do not disturb each other', T, async () => {
  await withRig(null, async (a) => {
    await withRig(null, async (b) => {
      const gotA: Got[] = [], gotB: Got[] = [];
      const ra = new RingBufferReader(a.obj.map('events'), collector(a, gotA));
      const rb = new RingBufferReader(b.obj.map('events'), collector(b, gotB));
      ra.start();
      rb.start();
      try {
        await sleep(50);
        await b.producer.run({ seqBase: 7, count: 1 });
        await until(() => gotB.length === 1, 500, 'ring B');
        await a.producer.run({ seqBase: 3, count: 2 });
        await until(() => gotA.length === 2, 500, 'ring A');
        await ra.close();
        await b.producer.run({ seqBase: 8, count: 1 });
        await until(() => gotB.length === 2, 500, 'ring B after A closed');
        assert.deepEqual(gotA.map((g) => g.seq), [3, 4]);
        assert.deepEqual(gotB.map((g) => g.seq), [7, 8]);
      } finally {
        await ra.close();
        await rb.close();
      }
    });
  });
});

test('a handler that throws does not get the same records again', T, async () => {
  await withRig(null, async (rig) => {
    const seqs: number[] = [];
    const reader = new RingBufferReader(rig.obj.map('events'), (dv, off) => {
      const seq = rig.decode(dv, off).seq;
      seqs.push(seq);
      if (seq === 2) throw new Error('handler failed');
    });
    try {
      rig.producer.runSync({ seqBase: 0, count: 5 });
      assert.throws(() => reader.drain(), /handler failed/);
      assert.equal(reader.drain(), 2);
      assert.deepEqual(seqs, [0, 1, 2, 3, 4]);
    } finally {
      await reader.close();
    }
  });
});

test('a handler may close its own reader: the drain under way finishes before the pages go', T, async () => {
  await withRig(null, async (rig) => {
    const seqs: number[] = [];
    let closing: Promise<void> | null = null;
    const reader = new RingBufferReader(rig.obj.map('events'), (dv, off) => {
      seqs.push(rig.decode(dv, off).seq);
      if (seqs.length === 2) closing = reader.close();
    });
    rig.producer.runSync({ seqBase: 0, count: 5 });
    reader.start();
    await until(() => closing !== null, 1_000, 'the handler to close the reader');
    await closing;
    assert.deepEqual(seqs, [0, 1, 2, 3, 4]);
    assert.equal(reader.drain(), 0);
  });
});
