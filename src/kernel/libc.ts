// The libc calls tcplens makes itself, bound once through koffi (every module that needs libc
// uses this one binding). Loading it needs no libbpf, so the CLI's process handling can use it.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

export const c = {
  poll: libc.func('int poll(_Inout_ uint8_t *fds, uint64_t nfds, int timeout)'),
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
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const uint8_t *val, uint32_t len)'),
  bind: libc.func('int bind(int fd, const uint8_t *addr, uint32_t len)'),
  sendto: libc.func('intptr_t sendto(int fd, const uint8_t *buf, size_t n, int flags, const uint8_t *addr, uint32_t alen)'),
};

/** struct pollfd, for poll(2). */
export const PollFd = koffi.struct('pollfd', { fd: 'int', events: 'short', revents: 'short' });
export const POLLERR = 0x8, POLLHUP = 0x10;

/** True when fd is the write end of a pipe (or socket) whose reader has gone. */
export function peerClosed(fd: number): boolean {
  const b = Buffer.alloc(koffi.sizeof(PollFd));
  b.writeInt32LE(fd, koffi.offsetof(PollFd, 'fd'));
  if ((c.poll(b, 1, 0) as number) <= 0) return false;
  return (b.readInt16LE(koffi.offsetof(PollFd, 'revents')) & (POLLERR | POLLHUP)) !== 0;
}
