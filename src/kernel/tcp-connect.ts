// Non-blocking TCP connects through libc (koffi), for probes that need a BPF socket filter on the
// socket BEFORE its SYN goes out, which node:net cannot give: socket(NONBLOCK|CLOEXEC),
// setsockopt(SO_ATTACH_BPF), connect() -> EINPROGRESS, completion seen by the process's one epoll
// wait (epoll-waiter.ts: whenConnected), result from SO_ERROR.
import {
  c, errno, strerror, koffi, SockaddrIn, SockaddrIn6, Linger,
  AF_INET, AF_INET6, SOCK_STREAM, SOCK_NONBLOCK, SOCK_CLOEXEC, SOL_SOCKET, SO_ERROR, SO_LINGER, SO_ATTACH_BPF, SO_COOKIE,
  EPOLLOUT,
} from './libbpf.js';
import { waiter } from './epoll-waiter.js';
import { TcplensError } from '../errors.js';

/** IP version, as the rest of tcplens writes it. */
type Family = 4 | 6;

export const EINPROGRESS = 115;

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

/** Call done once when fd's connect has finished (writable, error or hang-up); returns a cancel. */
export function whenConnected(fd: number, done: () => void): () => void {
  return waiter.watch(fd, EPOLLOUT, done);
}
