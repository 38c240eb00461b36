// The one ring buffer reader. It reads the BPF ring straight from its mmapped pages (no per-event
// FFI call): consumer page (RW), producer page and the data area mapped twice (RO), so a record
// that wraps is still contiguous. Wake-up per KERNEL-NOTES: wait in epoll_wait on a koffi worker
// thread while idle; while events keep coming, drain on a ~1 ms timer; when a drain finds nothing,
// go back to waiting. An eventfd in the epoll set wakes the waiter on close().
import { c, errno, strerror, view, isNull, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_FAILED,
  EPOLL_CTL_ADD, EPOLLIN, EFD_NONBLOCK, EFD_CLOEXEC, type Ptr } from './libbpf.js';
import { TcplensError } from './errors.js';
import type { BpfMap } from './bpf-map.js';

const PAGE = 4096;
const BUSY_BIT = 0x80000000;
const DISCARD_BIT = 0x40000000;
const HDR = 8;

/** Called for each record; the DataView is only valid during the call. */
export type RecordHandler = (data: DataView, offset: number, length: number) => void;

export interface RingStats { records: number; drains: number; wakeups: number }

export class RingBufferReader {
  private readonly size: number;
  private readonly mask: number;
  private consumerPtr: Ptr;
  private producerPtr: Ptr;
  private readonly consumerPos: BigUint64Array;
  private readonly producerPos: BigUint64Array;
  private readonly data: DataView;
  private epfd = -1;
  private wakeFd = -1;
  private closed = false;
  private waiting: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  readonly stats: RingStats = { records: 0, drains: 0, wakeups: 0 };

  constructor(map: BpfMap, private readonly onRecord: RecordHandler, private readonly drainIntervalMs = 1) {
    this.size = map.maxEntries;
    this.mask = this.size - 1;
    this.consumerPtr = this.mapOrThrow(PAGE, PROT_READ | PROT_WRITE, map.fd, 0);
    this.producerPtr = this.mapOrThrow(PAGE + 2 * this.size, PROT_READ, map.fd, PAGE);
    this.consumerPos = new BigUint64Array(view(this.consumerPtr, PAGE), 0, 1);
    this.producerPos = new BigUint64Array(view(this.producerPtr, PAGE), 0, 1);
    this.data = new DataView(view(this.producerPtr + BigInt(PAGE), 2 * this.size));

    this.epfd = c.epoll_create1(EFD_CLOEXEC) as number;
    this.wakeFd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) as number;
    for (const fd of [map.fd, this.wakeFd]) {
      const ev = Buffer.alloc(12);
      ev.writeUInt32LE(EPOLLIN, 0);
      ev.writeUInt32LE(fd, 4);
      if ((c.epoll_ctl(this.epfd, EPOLL_CTL_ADD, fd, ev) as number) < 0) {
        throw new TcplensError('TCPLENS_ERR_SYSCALL', `epoll_ctl on ring buffer: ${strerror(errno())}`, 'needs a ring buffer map fd');
      }
    }
  }

  /** Start delivering records in the background. */
  start(): void {
    this.waitLoop();
  }

  /** Consume every committed record now; returns how many were delivered. */
  drain(): number {
    this.stats.drains++;
    let cons = Number(this.consumerPos[0]);
    const prod = Number(this.producerPos[0]);
    let n = 0;
    while (cons < prod) {
      const off = cons & this.mask;
      const len = this.data.getUint32(off, true);
      if (len & BUSY_BIT) break;
      const recLen = len & ~(BUSY_BIT | DISCARD_BIT);
      if (!(len & DISCARD_BIT)) {
        this.onRecord(this.data, off + HDR, recLen);
        n++;
      }
      cons += (recLen + HDR + 7) & ~7;
      // Publish as we go so the kernel gets the space back during a long drain.
      if ((n & 1023) === 0) this.consumerPos[0] = BigInt(cons);
    }
    this.consumerPos[0] = BigInt(cons);
    this.stats.records += n;
    return n;
  }

  /** Stop waiting, deliver what is left, unmap. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    c.write(this.wakeFd, one, 8);
    if (this.waiting) await this.waiting;
    this.drain();
    c.munmap(this.consumerPtr, PAGE);
    c.munmap(this.producerPtr, PAGE + 2 * this.size);
    c.close(this.epfd);
    c.close(this.wakeFd);
    this.consumerPtr = this.producerPtr = 0n;
  }

  private waitLoop(): void {
    if (this.closed) return;
    const events = Buffer.alloc(24);
    this.waiting = new Promise((resolve) => {
      c.epoll_wait.async(this.epfd, events, 2, -1, () => {
        this.waiting = null;
        resolve();
        if (this.closed) return;
        this.stats.wakeups++;
        this.drainLoop();
      });
    });
  }

  private drainLoop(): void {
    this.timer = null;
    if (this.closed) return;
    if (this.drain() > 0) this.timer = setTimeout(() => this.drainLoop(), this.drainIntervalMs);
    else this.waitLoop();
  }

  private mapOrThrow(len: number, prot: number, fd: number, off: number): Ptr {
    const p = c.mmap(null, len, prot, MAP_SHARED, fd, off) as Ptr;
    if (isNull(p) || p === MAP_FAILED) {
      throw new TcplensError('TCPLENS_ERR_SYSCALL', `mmap of ring buffer failed: ${strerror(errno())}`, 'needs root and a ring buffer map');
    }
    return p;
  }
}
