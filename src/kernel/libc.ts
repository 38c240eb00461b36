// The libc calls tcplens makes itself, bound once through koffi (every module that needs libc
// uses this one binding). Loading it needs no libbpf, so the CLI's process handling can use it.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

// Socket addresses as the kernel reads them (glibc <netinet/in.h>); koffi lays them out, ports in
// network order through the big-endian type.
export const SockaddrIn = koffi.struct('tcplens_sockaddr_in', {
  sin_family: 'uint16_t', sin_port: 'uint16_be_t', sin_addr: koffi.array('uint8_t', 4), sin_zero: koffi.array('uint8_t', 8),
});
export const SockaddrIn6 = koffi.struct('tcplens_sockaddr_in6', {
  sin6_family: 'uint16_t', sin6_port: 'uint16_be_t', sin6_flowinfo: 'uint32_t', sin6_addr: koffi.array('uint8_t', 16), sin6_scope_id: 'uint32_t',
});
export const Linger = koffi.struct('tcplens_linger', { l_onoff: 'int', l_linger: 'int' });
/** struct pollfd, for poll(2). */
export const PollFd = koffi.struct('pollfd', { fd: 'int', events: 'short', revents: 'short' });
export const POLLERR = 0x8, POLLHUP = 0x10;


export const c = {
  poll: libc.func('poll', 'int', [koffi.inout(koffi.pointer(PollFd)), 'unsigned long', 'int']),
  mmap: libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
  munmap: libc.func('int munmap(void *addr, size_t len)'),
  close: libc.func('int close(int fd)'),
  open: libc.func('int open(const char *path, int flags)'),
  epoll_create1: libc.func('int epoll_create1(int flags)'),
  epoll_ctl: libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)'),
  epoll_wait: libc.func('int epoll_wait(int epfd, _Out_ uint8_t *events, int maxevents, int timeout)'),
  eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
  write: libc.func('intptr_t write(int fd, void *buf, size_t n)'),
  vsnprintf: libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t n, const char *fmt, void *ap)'),
  strerror: libc.func('const char *strerror(int errnum)'),
  setns: libc.func('int setns(int fd, int nstype)'),
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  ioctl: libc.func('int ioctl(int fd, unsigned long req, void *arg)'),
  if_nametoindex: libc.func('unsigned int if_nametoindex(const char *name)'),
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *val, _Inout_ uint32_t *len)'),
  // void * (not uint8_t *): koffi then passes a Buffer's memory as is, no copy in or out. Probes
  // make several of these calls each, and on this VM a marshalled array costs a few microseconds.
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)'),
  getsockoptInto: libc.func('getsockopt', 'int', ['int', 'int', 'int', 'void *', 'void *']),
  connect4: libc.func('connect', 'int', ['int', koffi.pointer(SockaddrIn), 'uint32_t']),
  connect6: libc.func('connect', 'int', ['int', koffi.pointer(SockaddrIn6), 'uint32_t']),
  bind: libc.func('int bind(int fd, const uint8_t *addr, uint32_t len)'),
  sendto: libc.func('intptr_t sendto(int fd, const uint8_t *buf, size_t n, int flags, const uint8_t *addr, uint32_t alen)'),
};

/** True when fd is the write end of a pipe (or socket) whose reader has gone. */
export function peerClosed(fd: number): boolean {
  const pfd = { fd, events: 0, revents: 0 };
  return (c.poll(pfd, 1, 0) as number) > 0 && (pfd.revents & (POLLERR | POLLHUP)) !== 0;
}
