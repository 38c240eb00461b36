// Non-blocking TCP connects through libc (koffi), for probes that need a BPF socket filter on the
// socket BEFORE its SYN goes out, which node:net cannot give: socket(NONBLOCK|CLOEXEC),
// setsockopt(SO_ATTACH_BPF), connect() -> EINPROGRESS, completion seen by ONE epoll shared by all
// connects in flight, result from SO_ERROR. The epoll_wait runs async on a koffi worker: one
// pool thread for any number of probes (a blocked pool thread per probe would starve dns.lookup
// and fs once there are four).
import { readSync } from 'node:fs';
import {
  c, errno, strerror, koffi, SockaddrIn, SockaddrIn6, Linger,
  AF_INET, AF_INET6, SOCK_STREAM, SOCK_NONBLOCK, SOCK_CLOEXEC, SOL_SOCKET, SO_ERROR, SO_LINGER, SO_ATTACH_BPF, SO_COOKIE,
  EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLLOUT, EPOLLONESHOT, EPOLL_EVENT, EPOLL_DATA, EFD_NONBLOCK, EFD_CLOEXEC,
} from './libbpf.js';
import { TcplensError } from '../errors.js';

/** IP version, as the rest of tcplens writes it. */
type Family = 4 | 6;

export const EINPROGRESS = 115;
const EINTR = 4;
const MAX_EVENTS = 256;

// Scratch memory for the option calls: JS is single-threaded and each call is synchronous, so
// one set serves every probe (allocating per call cost as much as the syscall itself).
const int4 = Buffer.alloc(4);
const u64 = Buffer.alloc(8);
const optLen = Buffer.alloc(4);
const lingerZero = Buffer.alloc(koffi.sizeof(Linger));
koffi.encode(lingerZero, Linger, { l_onoff: 1, l_linger: 0 });

function fail(what: string, err: number, hint: string): TcplensError {
  return new TcplensError('TCPLENS_ERR_SYSCALL', `${what}: ${strerror(err)}`, hint);
}

/** A non-blocking, close-on-exec TCP socket of the family (in this thread's network namespace). */
export function openTcpSocket(family: Family): number {
  const fd = c.socket(family === 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) throw fail('socket()', errno(), 'out of file descriptors? lower --concurrency or raise ulimit -n');
  return fd;
}

export function attachSocketFilter(fd: number, progFd: number): void {
  int4.writeInt32LE(progFd);
  if ((c.setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, int4, 4) as number) < 0) {
    throw new TcplensError('TCPLENS_ERR_ATTACH', `SO_ATTACH_BPF: ${strerror(errno())}`, 'needs root and a loaded socket filter program');
  }
}

/** The socket's cookie: the key bpf_get_socket_cookie() gives kernel programs for it. */
export function socketCookie(fd: number): bigint {
  optLen.writeUInt32LE(8);
  if ((c.getsockoptInto(fd, SOL_SOCKET, SO_COOKIE, u64, optLen) as number) < 0) throw fail('getsockopt(SO_COOKIE)', errno(), 'needs Linux >= 4.12');
  return u64.readBigUInt64LE();
}

/** close() then sends a RST instead of a FIN: neither side keeps the probe in TIME_WAIT. */
export function resetOnClose(fd: number): void {
  if ((c.setsockopt(fd, SOL_SOCKET, SO_LINGER, lingerZero, lingerZero.length) as number) < 0) throw fail('setsockopt(SO_LINGER)', errno(), 'a TCP socket');
}

/** Start connecting; 0 (connected at once), EINPROGRESS, or the errno connect() gave. */
export function startConnect(fd: number, family: Family, addr: Uint8Array, port: number): number {
  const rc = family === 4
    ? c.connect4(fd, { sin_family: AF_INET, sin_port: port, sin_addr: Array.from(addr.subarray(0, 4)), sin_zero: [0, 0, 0, 0, 0, 0, 0, 0] }, koffi.sizeof(SockaddrIn)) as number
    : c.connect6(fd, { sin6_family: AF_INET6, sin6_port: port, sin6_flowinfo: 0, sin6_addr: Array.from(addr.subarray(0, 16)), sin6_scope_id: 0 }, koffi.sizeof(SockaddrIn6)) as number;
  return rc === 0 ? 0 : errno();
}

/** The pending error of a socket (0: the connect succeeded). */
export function socketError(fd: number): number {
  optLen.writeUInt32LE(4);
  if ((c.getsockoptInto(fd, SOL_SOCKET, SO_ERROR, int4, optLen) as number) < 0) return errno();
  return int4.readInt32LE();
}

export function closeFd(fd: number): void {
  c.close(fd);
}

interface Watch { fd: number; done: () => void }

/** One epoll set for every connect in flight, at most one epoll_wait running; its fds exist only
 * while something is watched, so a finished run leaves no descriptor behind. */
class ConnectWaiter {
  private epfd = -1;
  private wakeFd = -1;
  private waiting = false;
  private nextToken = 1;
  private readonly watches = new Map<number, Watch>();
  private readonly events = Buffer.alloc(EPOLL_EVENT * MAX_EVENTS);

  /** Call done once when fd's connect has finished (writable, error or hang-up); returns a cancel. */
  watch(fd: number, done: () => void): () => void {
    this.open();
    // Events carry a token, not the fd: a closed fd number can be reused by the next probe while
    // an event for the old one is still on its way back from the worker thread.
    const token = this.nextToken;
    this.nextToken = (this.nextToken % 0xfffffffe) + 1; // never 0: that is the wake-up's
    const ev = Buffer.alloc(EPOLL_EVENT);
    ev.writeUInt32LE((EPOLLOUT | EPOLLONESHOT) >>> 0, 0);
    ev.writeUInt32LE(token, EPOLL_DATA);
    if ((c.epoll_ctl(this.epfd, EPOLL_CTL_ADD, fd, ev) as number) < 0) {
      const err = errno();
      if (this.watches.size === 0 && !this.waiting) this.shut();
      throw fail(`epoll_ctl(ADD, ${fd})`, err, 'a socket fd');
    }
    this.watches.set(token, { fd, done });
    this.wait();
    return () => this.unwatch(token);
  }

  get inFlight(): number {
    return this.watches.size;
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
      throw fail('epoll for connects', err, 'the process may be out of file descriptors');
    }
    const ev = Buffer.alloc(EPOLL_EVENT);
    ev.writeUInt32LE(1 /* EPOLLIN */, 0);
    ev.writeUInt32LE(0, EPOLL_DATA); // token 0 is the wake-up
    c.epoll_ctl(this.epfd, EPOLL_CTL_ADD, this.wakeFd, ev);
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
    this.waiting = true;
    c.epoll_wait.async(this.epfd, this.events, MAX_EVENTS, -1, (err: unknown, n: number) => {
      this.waiting = false;
      const ready: Watch[] = [];
      const failed = !!err || n < 0 ? (err ? -1 : errno()) : 0;
      for (let i = 0; i < n; i++) {
        const token = this.events.readUInt32LE(EPOLL_EVENT * i + EPOLL_DATA);
        if (token === 0) {
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
        process.nextTick(() => { throw fail('epoll_wait for connects', failed, 'report this'); });
      }
      // ONESHOT has disarmed them; out of the set too, so their owners may keep the sockets.
      for (const w of ready) c.epoll_ctl(this.epfd, EPOLL_CTL_DEL, w.fd, Buffer.alloc(EPOLL_EVENT));
      // Nothing left to watch: give the descriptors back (and let the process exit).
      if (this.watches.size === 0) this.shut();
      else this.wait();
      for (const w of ready) {
        try {
          w.done();
        } catch (e) {
          process.nextTick(() => { throw e; });
        }
      }
    });
  }
}

export const connectWaiter = new ConnectWaiter();
