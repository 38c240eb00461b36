// The one ring buffer reader. It reads the BPF ring straight from its mmapped pages (no per-event
// FFI call): consumer page (RW), producer page and the data area mapped twice (RO), so a record
// that wraps is still contiguous. Wake-up per KERNEL-NOTES: while idle, wait in epoll_wait on a
// koffi worker thread; while events keep coming, drain on a ~1 ms timer; when a drain finds
// nothing, go back to waiting. All readers of the process share ONE epoll wait (rings are armed
// EPOLLONESHOT when they go idle), so n readers hold one libuv pool thread, not n: a blocked pool
// thread per reader would starve fs, dns and other async koffi calls once there are four.
import { c, errno, strerror, view, isNull, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_FAILED, MapType, type Ptr } from './libbpf.js';
import { TcplensError } from '../errors.js';
import type { BpfMap } from './bpf-map.js';
import { ReadableWatch } from './epoll-waiter.js';

const PAGE = 4096;
const BUSY_BIT = 0x80000000;
const DISCARD_BIT = 0x40000000;
const LEN_MASK = 0x0fffffff;
const HDR = 8;

/** Called for each record; the DataView is only valid during the call. */
export type RecordHandler = (data: DataView, offset: number, length: number) => void;

export interface RingStats {
  /** records delivered to the handler */
  records: number;
  /** records the producer discarded (skipped) */
  discarded: number;
  drains: number;
  /** times the epoll wait woke this reader */
  wakeups: number;
}

export class RingBufferReader {
  private readonly size: number;
  private readonly mask: number;
  private consumerPtr: Ptr;
  private producerPtr: Ptr;
  private readonly consumerPos: BigUint64Array;
  private readonly producerPos: BigUint64Array;
  private readonly data: DataView;
  private readonly headers: Uint32Array;
  /** Our consumer position: only we write it, so it lives in JS and is published to the page. */
  private cons: number;
  /** The last drain stopped at a record still being written (busy). */
  private stalled = false;
  private closed = false;
  private started = false;
  private idle: ReadableWatch | null = null;
  private draining = false;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  readonly stats: RingStats = { records: 0, discarded: 0, drains: 0, wakeups: 0 };

  constructor(private readonly map: BpfMap, private readonly onRecord: RecordHandler, private readonly drainIntervalMs = 1) {
    if (map.type !== MapType.RINGBUF) {
      throw new TcplensError('TCPLENS_ERR_LAYOUT', `map ${map.name} is not a ring buffer (type ${map.type})`, 'declare it with TCPLENS_RINGBUF()');
    }
    this.size = map.maxEntries;
    if (this.size < PAGE || (this.size & (this.size - 1)) !== 0) {
      throw new TcplensError('TCPLENS_ERR_LAYOUT', `ring buffer ${map.name} has ${this.size} bytes`, 'a ring buffer is a power-of-two number of pages');
    }
    this.mask = this.size - 1;
    this.consumerPtr = mapOrThrow(PAGE, PROT_READ | PROT_WRITE, map.fd, 0);
    this.producerPtr = mapOrThrow(PAGE + 2 * this.size, PROT_READ, map.fd, PAGE);
    this.consumerPos = new BigUint64Array(view(this.consumerPtr, PAGE), 0, 1);
    this.producerPos = new BigUint64Array(view(this.producerPtr, PAGE), 0, 1);
    const dataArea = view(this.producerPtr + BigInt(PAGE), 2 * this.size);
    this.data = new DataView(dataArea);
    this.headers = new Uint32Array(dataArea);
    this.cons = Number(Atomics.load(this.consumerPos, 0));
  }

  /** Start delivering records in the background. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.idle = new ReadableWatch(this.map.fd, () => this.wake());
    this.step();
  }

  /** Consume every committed record now; returns how many were delivered. */
  drain(): number {
    // After close() the pages are gone; a handler that calls drain() gets nothing (no re-entry).
    if (this.draining || isNull(this.producerPtr)) return 0;
    this.draining = true;
    this.stats.drains++;
    const data = this.data, headers = this.headers, mask = this.mask, onRecord = this.onRecord;
    // Positions grow past 2^31 (doubles in V8); the loop works on small integers only: the offset
    // where this drain starts and the bytes it has consumed, both below 2 * ring size.
    const cons = this.cons;
    const avail = Number(Atomics.load(this.producerPos, 0)) - cons;
    const start = cons & mask;
    // Hand space back to the kernel every quarter ring during a long drain, not per record.
    const publishEvery = this.size >>> 2;
    let done = 0, published = 0, n = 0, discarded = 0;
    try {
      while (done < avail) {
        const off = (start + done) & mask;
        // The kernel clears BUSY with a release store after writing the record; read it with acquire.
        const len = Atomics.load(headers, off >>> 2);
        if (len & BUSY_BIT) break;
        const recLen = len & LEN_MASK;
        done += (recLen + HDR + 7) & ~7;
        if (len & DISCARD_BIT) discarded++;
        else {
          n++;
          onRecord(data, off + HDR, recLen);
        }
        if (done - published >= publishEvery) {
          Atomics.store(this.consumerPos, 0, BigInt(cons + done));
          published = done;
        }
      }
    } finally {
      // Also when a handler throws: the records before it (and the one that threw) are consumed.
      this.cons = cons + done;
      if (done !== published) Atomics.store(this.consumerPos, 0, BigInt(cons + done));
      this.stalled = done < avail;
      this.stats.records += n;
      this.stats.discarded += discarded;
      this.draining = false;
    }
    return n;
  }

  /** Stop waiting, deliver what is left, unmap. Prompt even while the reader waits in epoll. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Called from a record handler? Let that drain finish before the pages go away.
    await null;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = this.immediate = null;
    await this.idle?.close();
    this.drain();
    c.munmap(this.consumerPtr, PAGE);
    c.munmap(this.producerPtr, PAGE + 2 * this.size);
    this.consumerPtr = this.producerPtr = 0n;
  }

  /** The shared waiter saw our ring readable. */
  private wake(): void {
    if (this.closed) return;
    this.stats.wakeups++;
    this.step();
  }

  /** Drain, then either drain again (events are flowing, or a record is still being written) or
   *  go back to waiting in epoll. Again after the interval, or at once if this drain took an eighth
   *  of the ring or more: at that pace a timer tick or a GC pause could let the ring fill. */
  private step(): void {
    this.timer = this.immediate = null;
    if (this.closed) return;
    let consumed = 1;
    try {
      const before = this.cons;
      this.drain();
      consumed = this.cons - before;
    } finally {
      if (!this.closed) {
        if (consumed >= this.size >>> 3) this.immediate = setImmediate(() => this.step());
        else if (consumed > 0 || this.stalled) this.timer = setTimeout(() => this.step(), this.drainIntervalMs);
        else this.idle?.arm();
      }
    }
  }
}

function mapOrThrow(len: number, prot: number, fd: number, off: number): Ptr {
  const p = c.mmap(null, len, prot, MAP_SHARED, fd, off) as Ptr;
  if (isNull(p) || p === MAP_FAILED) {
    throw new TcplensError('TCPLENS_ERR_SYSCALL', `mmap of ring buffer failed: ${strerror(errno())}`, 'needs root and a ring buffer map');
  }
  return p;
}
