// The one epoll wait of the process, shared by every mmapped-ring reader (BPF ring buffers and
// AF_PACKET rings alike). While idle a reader arms its fd (EPOLLONESHOT) and the shared wait on a
// koffi worker thread reports it; while busy the reader drains on its own timer and stays
// disarmed. n readers hold one libuv pool thread, not n: a blocked pool thread per reader would
// starve fs, dns and other async koffi calls once there are four.
import { readSync } from 'node:fs';
import { c, errno, strerror, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EPOLLIN, EPOLLONESHOT, EFD_NONBLOCK, EFD_CLOEXEC, EPOLL_EVENT, EPOLL_DATA } from './libbpf.js';
import { TcplensError } from '../errors.js';

// struct epoll_event is packed on x86-64 only (EPOLL_EVENT, EPOLL_DATA); we keep the fd in data.
const MAX_EVENTS = 16;

/** A reader the waiter can wake when its fd becomes readable. */
export interface Wakeable { wake(): void }

/** One epoll set for every ring of the process, and at most one epoll_wait in flight. */
export class SharedWaiter {
  private epfd = -1;
  private wakeFd = -1;
  private readonly readers = new Map<number, Wakeable>();
  private waiting: Promise<void> | null = null;
  private readonly events = Buffer.alloc(EPOLL_EVENT * MAX_EVENTS);

  add(fd: number, reader: Wakeable): void {
    this.open();
    if (this.readers.has(fd)) throw new TcplensError('TCPLENS_ERR_SYSCALL', `fd ${fd} already has a reader`, 'one reader per fd');
    // Registered disarmed (no events) until the reader finds the ring empty and arms it.
    this.ctl(EPOLL_CTL_ADD, fd, 0);
    this.readers.set(fd, reader);
    this.wait();
  }

  /** Report the ring once when it has data (now, if it already has). */
  arm(fd: number): void {
    if (this.readers.has(fd)) this.ctl(EPOLL_CTL_MOD, fd, EPOLLIN | EPOLLONESHOT);
  }

  async remove(fd: number, reader: Wakeable): Promise<void> {
    if (this.readers.get(fd) !== reader) return;
    this.readers.delete(fd);
    c.epoll_ctl(this.epfd, EPOLL_CTL_DEL, fd, Buffer.alloc(EPOLL_EVENT));
    if (this.readers.size === 0 && this.waiting) {
      // Nothing left to wait for: end the wait so the pool thread is free and the process can exit.
      const one = Buffer.alloc(8);
      one.writeBigUInt64LE(1n);
      c.write(this.wakeFd, one, 8);
      await this.waiting;
    }
  }

  private open(): void {
    if (this.epfd >= 0) return;
    this.epfd = c.epoll_create1(EFD_CLOEXEC) as number;
    this.wakeFd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) as number;
    if (this.epfd < 0 || this.wakeFd < 0) {
      throw new TcplensError('TCPLENS_ERR_SYSCALL', `epoll for ring readers: ${strerror(errno())}`, 'the process may be out of file descriptors');
    }
    this.ctl(EPOLL_CTL_ADD, this.wakeFd, EPOLLIN);
  }

  private ctl(op: number, fd: number, events: number): void {
    const ev = Buffer.alloc(EPOLL_EVENT);
    ev.writeUInt32LE(events >>> 0, 0);
    ev.writeUInt32LE(fd, EPOLL_DATA);
    if ((c.epoll_ctl(this.epfd, op, fd, ev) as number) < 0) {
      throw new TcplensError('TCPLENS_ERR_SYSCALL', `epoll_ctl on fd ${fd}: ${strerror(errno())}`, 'needs a pollable fd');
    }
  }

  private wait(): void {
    if (this.waiting || this.readers.size === 0) return;
    this.waiting = new Promise((resolve) => {
      c.epoll_wait.async(this.epfd, this.events, MAX_EVENTS, -1, (err: unknown, n: number) => {
        this.waiting = null;
        resolve();
        const ready: Wakeable[] = [];
        for (let i = 0; !err && i < n; i++) {
          const fd = this.events.readUInt32LE(EPOLL_EVENT * i + EPOLL_DATA);
          if (fd === this.wakeFd) this.clearWake();
          else {
            const r = this.readers.get(fd);
            if (r) ready.push(r);
          }
        }
        // Wait again first, and wake every ready reader even if one's handler throws: a reader
        // that misses its wake-up stays disarmed (EPOLLONESHOT) for good.
        this.wait();
        for (const r of ready) {
          try {
            r.wake();
          } catch (e) {
            process.nextTick(() => { throw e; });
          }
        }
      });
    });
  }

  private clearWake(): void {
    try {
      readSync(this.wakeFd, Buffer.alloc(8));
    } catch {
      // EAGAIN: already cleared
    }
  }
}

/** The process's one waiter. */
export const waiter = new SharedWaiter();

