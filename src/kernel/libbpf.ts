// Typed bindings to the system libbpf.so.1 and the few libc calls the kernel layer needs,
// through koffi (no native build step). Pointers are BigInt (koffi 3). Only this file names
// C symbols; everything else goes through BpfObject, RingBufferReader and friends.
import koffi, { type LibraryHandle } from 'koffi';
import { TcplensError } from '../errors.js';

export type Ptr = bigint;

function loadLibbpf(): LibraryHandle {
  try {
    return koffi.load('libbpf.so.1');
  } catch (e) {
    throw new TcplensError('TCPLENS_ERR_LIBBPF', `cannot load libbpf.so.1: ${(e as Error).message}`,
      'install it: apt-get install libbpf1 (or run ./scripts/setup.sh)');
  }
}

const lib = loadLibbpf();
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
export const Pollfd = koffi.struct('tcplens_pollfd', { fd: 'int', events: 'short', revents: 'short' });

export const PrintFn = koffi.proto('int tcplens_libbpf_print_fn(int level, const char *fmt, void *args)');

export const bpf = {
  // objects
  object_open_file: lib.func('void *bpf_object__open_file(const char *path, void *opts)'),
  object_load: lib.func('int bpf_object__load(void *obj)'),
  object_close: lib.func('void bpf_object__close(void *obj)'),
  object_btf: lib.func('void *bpf_object__btf(void *obj)'),
  object_find_program_by_name: lib.func('void *bpf_object__find_program_by_name(void *obj, const char *name)'),
  object_find_map_by_name: lib.func('void *bpf_object__find_map_by_name(void *obj, const char *name)'),
  object_next_map: lib.func('void *bpf_object__next_map(void *obj, void *prev)'),
  // programs
  program_fd: lib.func('int bpf_program__fd(void *prog)'),
  program_set_autoload: lib.func('int bpf_program__set_autoload(void *prog, bool autoload)'),
  program_attach_cgroup: lib.func('void *bpf_program__attach_cgroup(void *prog, int cgroup_fd)'),
  link_destroy: lib.func('int bpf_link__destroy(void *link)'),
  link_pin: lib.func('int bpf_link__pin(void *link, const char *path)'),
  link_update: lib.func('int bpf_link_update(int link_fd, int new_prog_fd, void *opts)'),
  link_detach: lib.func('int bpf_link_detach(int link_fd)'),
  prog_get_fd_by_id: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
  // maps
  map_name: lib.func('const char *bpf_map__name(void *map)'),
  map_fd: lib.func('int bpf_map__fd(void *map)'),
  map_type: lib.func('int bpf_map__type(void *map)'),
  map_key_size: lib.func('uint32_t bpf_map__key_size(void *map)'),
  map_value_size: lib.func('uint32_t bpf_map__value_size(void *map)'),
  map_max_entries: lib.func('uint32_t bpf_map__max_entries(void *map)'),
  map_set_max_entries: lib.func('int bpf_map__set_max_entries(void *map, uint32_t max)'),
  map_initial_value: lib.func('void *bpf_map__initial_value(void *map, _Out_ size_t *psize)'),
  map_reuse_fd: lib.func('int bpf_map__reuse_fd(void *map, int fd)'),
  map_lookup_elem: lib.func('int bpf_map_lookup_elem(int fd, void *key, void *value)'),
  map_update_elem: lib.func('int bpf_map_update_elem(int fd, void *key, void *value, uint64_t flags)'),
  map_delete_elem: lib.func('int bpf_map_delete_elem(int fd, void *key)'),
  map_lookup_and_delete_elem: lib.func('int bpf_map_lookup_and_delete_elem(int fd, void *key, void *value)'),
  map_get_next_key: lib.func('int bpf_map_get_next_key(int fd, void *key, void *next_key)'),
  // programs by fd
  prog_test_run_opts: lib.func('int bpf_prog_test_run_opts(int fd, void *opts)'),
  obj_get_info_by_fd: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)'),
  obj_get: lib.func('int bpf_obj_get(const char *path)'),
  obj_pin: lib.func('int bpf_obj_pin(int fd, const char *path)'),
  enable_stats: lib.func('int bpf_enable_stats(int type)'),
  // tc
  tc_hook_create: lib.func('int bpf_tc_hook_create(void *hook)'),
  tc_hook_destroy: lib.func('int bpf_tc_hook_destroy(void *hook)'),
  tc_attach: lib.func('int bpf_tc_attach(void *hook, void *opts)'),
  tc_detach: lib.func('int bpf_tc_detach(void *hook, void *opts)'),
  // btf
  btf_find_by_name_kind: lib.func('int btf__find_by_name_kind(void *btf, const char *name, uint32_t kind)'),
  btf_type_by_id: lib.func('void *btf__type_by_id(void *btf, uint32_t id)'),
  btf_name_by_offset: lib.func('const char *btf__name_by_offset(void *btf, uint32_t offset)'),
  // probes and logging
  probe_prog_type: lib.func('int libbpf_probe_bpf_prog_type(int type, void *opts)'),
  probe_map_type: lib.func('int libbpf_probe_bpf_map_type(int type, void *opts)'),
  set_print: lib.func('void *libbpf_set_print(void *fn)'),
  num_possible_cpus: lib.func('int libbpf_num_possible_cpus(void)'),
};

export const c = {
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
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *val, _Inout_ uint32_t *len)'),
  // void * (not uint8_t *): koffi then passes a Buffer's memory as is, no copy in or out. Probes
  // make several of these calls each, and on this VM a marshalled array costs a few microseconds.
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)'),
  getsockoptInto: libc.func('getsockopt', 'int', ['int', 'int', 'int', 'void *', 'void *']),
  poll1: libc.func('poll', 'int', [koffi.inout(koffi.pointer(Pollfd)), 'unsigned long', 'int']),
  connect4: libc.func('connect', 'int', ['int', koffi.pointer(SockaddrIn), 'uint32_t']),
  connect6: libc.func('connect', 'int', ['int', koffi.pointer(SockaddrIn6), 'uint32_t']),
};

export const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
export const MAP_FAILED = 0xffffffffffffffffn;
export const O_RDONLY = 0, O_DIRECTORY = 0o200000, O_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3, EPOLLIN = 1, EPOLLONESHOT = 1 << 30;
export const EFD_NONBLOCK = 0o4000, EFD_CLOEXEC = 0o2000000;
// struct epoll_event { u32 events; u64 data } is packed on x86-64 only.
export const EPOLL_EVENT = process.arch === 'x64' ? 12 : 16;
export const EPOLL_DATA = process.arch === 'x64' ? 4 : 8;
export const EPOLLOUT = 4, EPOLLERR = 8, EPOLLHUP = 0x10;
export const AF_INET = 2, AF_INET6 = 10, SOCK_STREAM = 1, SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000;
export const POLLERR = 8, POLLHUP = 0x10;
export const SOL_SOCKET = 1, SO_ERROR = 4, SO_LINGER = 13, SO_ATTACH_BPF = 50, SO_COOKIE = 57;

export const MapType = { RINGBUF: 27, SK_STORAGE: 24, SOCKHASH: 18, LRU_HASH: 9 } as const;

export function errno(): number {
  return koffi.errno();
}

export function strerror(err: number): string {
  return c.strerror(Math.abs(err)) as string;
}

export function view(ptr: Ptr, len: number): ArrayBuffer {
  return koffi.view(ptr, len);
}

export function addressOf(buf: Buffer | Uint8Array): Ptr {
  return koffi.address(buf);
}

export function isNull(p: unknown): boolean {
  return p === null || p === undefined || p === 0n || p === 0;
}

export { koffi };
