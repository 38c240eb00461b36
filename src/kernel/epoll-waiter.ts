// The one epoll wait of the process, shared by everything that waits on a kernel fd: mmapped-ring
// readers (BPF ring buffers, AF_PACKET rings) waiting for data, and hops' non-blocking connects
// waiting for completion. Each watch is one-shot (EPOLLONESHOT, then out of the set): a ring
// reader watches only while idle and drains on its own timer while busy; a connect is watched
// once. The epoll_wait runs async on a koffi worker: n watchers hold one libuv pool thread, not n
// (a blocked pool thread each would starve fs, dns and other async koffi calls once there are four).
import { readSync } from 'node:fs';
import { c, errno, strerror, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLLIN, EPOLLONESHOT, EFD_NONBLOCK, EFD_CLOEXEC, EPOLL_EVENT, EPOLL_DATA } from './libbpf.js';
import { TcplensError } from '../errors.js';

const MAX_EVENTS = 256;
const EINTR = 4;
const WAKE_TOKEN = 0;

interface Watch { fd: number; done: () => void }

function fail(what: string, err: number, hint: string): TcplensError {
  return new TcplensError('TCPLENS_ERR_SYSCALL', `${what}: ${strerror(err)}`, hint);
}

/** One epoll set, at most one epoll_wait in flight; its fds exist only while something is
 *  watched, so an idle process holds no descriptor and can exit. */
export class FdWaiter {
  private epfd = -1;
  private wakeFd = -1;
  private waiting: Promise<void> | null = null;
  private nextToken = 1;
  private readonly watches = new Map<number, Watch>();
  // struct epoll_event is packed on x86-64 only (EPOLL_EVENT, EPOLL_DATA); data holds the token.
  private readonly events = Buffer.alloc(EPOLL_EVENT * MAX_EVENTS);

  /** Call done once when fd has one of events (errors and hang-ups always count; level-triggered,
   *  so an fd already ready reports at once). Returns a cancel; done never runs after it. */
  watch(fd: number, events: number, done: () => void): () => void {
    this.open();
    // Events carry a token, not the fd: a closed fd number can be reused (the next probe's socket)
    // while an event for the old one is still on its way back from the worker thread.
    const token = this.nextToken;
    this.nextToken = (this.nextToken % 0xfffffffe) + 1; // never WAKE_TOKEN
    if (!this.ctl(EPOLL_CTL_ADD, fd, events | EPOLLONESHOT, token)) {
      const err = errno();
      if (this.watches.size === 0 && !this.waiting) this.shut();
      throw fail(`epoll_ctl(ADD, ${fd})`, err, 'needs a pollable fd');
    }
    this.watches.set(token, { fd, done });
    this.wait();
    return () => this.unwatch(token);
  }

  /** Resolves once no epoll_wait is in flight when nothing is watched any more (the pool thread is
   *  free); at once while others still watch. */
  async settled(): Promise<void> {
    if (this.watches.size === 0 && this.waiting) await this.waiting;
  }

  private unwatch(token: number): void {
    const w = this.watches.get(token);
    if (!w) return;
    this.watches.delete(token);
    c.epoll_ctl(this.epfd, EPOLL_CTL_DEL, w.fd, Buffer.alloc(EPOLL_EVENT));
    if (this.watches.size === 0 && this.waiting) this.wake();
  }

  private open(): void {
    if (this.epfd >= 0) return;
    this.epfd = c.epoll_create1(EFD_CLOEXEC) as number;
    this.wakeFd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) as number;
    if (this.epfd < 0 || this.wakeFd < 0) {
      const err = errno();
      this.shut();
      throw fail('epoll_create1/eventfd', err, 'the process may be out of file descriptors');
    }
    this.ctl(EPOLL_CTL_ADD, this.wakeFd, EPOLLIN, WAKE_TOKEN);
  }

  private ctl(op: number, fd: number, events: number, token: number): boolean {
    const ev = Buffer.alloc(EPOLL_EVENT);
    ev.writeUInt32LE(events >>> 0, 0);
    ev.writeUInt32LE(token, EPOLL_DATA);
    return (c.epoll_ctl(this.epfd, op, fd, ev) as number) === 0;
  }

  private shut(): void {
    if (this.epfd >= 0) c.close(this.epfd);
    if (this.wakeFd >= 0) c.close(this.wakeFd);
    this.epfd = this.wakeFd = -1;
  }

  private wake(): void {
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    c.write(this.wakeFd, one, 8);
  }

  private wait(): void {
    if (this.waiting) return;
    this.waiting = new Promise((resolve) => {
      c.epoll_wait.async(this.epfd, this.events, MAX_EVENTS, -1, (err: unknown, n: number) => {
        const failed = err ? -1 : n < 0 ? errno() : 0;
        const ready: Watch[] = [];
        for (let i = 0; i < n; i++) {
          const token = this.events.readUInt32LE(EPOLL_EVENT * i + EPOLL_DATA);
          if (token === WAKE_TOKEN) {
            try { readSync(this.wakeFd, Buffer.alloc(8)); } catch { /* EAGAIN: already cleared */ }
            continue;
          }
          const w = this.watches.get(token);
          if (w) {
            this.watches.delete(token);
            ready.push(w);
          }
        }
        if (failed && failed !== EINTR) {
          process.nextTick(() => { throw fail('epoll_wait', failed, 'report this'); });
        }
        // ONESHOT has disarmed them; out of the set too, so their owners may close or re-watch.
        for (const w of ready) c.epoll_ctl(this.epfd, EPOLL_CTL_DEL, w.fd, Buffer.alloc(EPOLL_EVENT));
        this.waiting = null;
        resolve();
        // Nothing left to watch: give the descriptors back (and let the process exit).
        if (this.watches.size === 0) this.shut();
        else this.wait();
        // Every ready watcher runs even if one throws: a ring reader that missed its wake-up
        // would never be watched again.
        for (const w of ready) {
          try {
            w.done();
          } catch (e) {
            process.nextTick(() => { throw e; });
          }
        }
      });
    });
  }
}

/** The process's one waiter. */
export const waiter = new FdWaiter();

/** A ring reader's watch on its fd while it is idle: arm() when a drain found nothing; the
 *  handler runs once when the fd turns readable (or at once if it already is). */
export class ReadableWatch {
  private cancel: (() => void) | null = null;

  constructor(private readonly fd: number, private readonly onReadable: () => void) {}

  arm(): void {
    if (this.cancel) return;
    this.cancel = waiter.watch(this.fd, EPOLLIN, () => {
      this.cancel = null;
      this.onReadable();
    });
  }

  /** No more wake-ups; resolves when the shared wait has let go of the pool thread (if this was
   *  the last watch). */
  async close(): Promise<void> {
    this.cancel?.();
    this.cancel = null;
    await waiter.settled();
  }
}
