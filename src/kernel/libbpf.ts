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

export const PrintFn = koffi.proto('int tcplens_libbpf_print_fn(int level, const char *fmt, void *args)');

// struct bpf_tc_hook and struct bpf_tc_opts from /usr/include/bpf/libbpf.h. Each begins with its
// own size (sz = koffi.sizeof), which is how libbpf knows which fields this caller has.
export const TcHook = koffi.struct('bpf_tc_hook', { sz: 'size_t', ifindex: 'int', attach_point: 'uint32_t', parent: 'uint32_t' });
export const TcOpts = koffi.struct('bpf_tc_opts', {
  sz: 'size_t', prog_fd: 'int', flags: 'uint32_t', prog_id: 'uint32_t', handle: 'uint32_t', priority: 'uint32_t',
});

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
  tc_hook_create: lib.func('int bpf_tc_hook_create(bpf_tc_hook *hook)'),
  tc_hook_destroy: lib.func('int bpf_tc_hook_destroy(bpf_tc_hook *hook)'),
  tc_attach: lib.func('int bpf_tc_attach(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)'),
  tc_detach: lib.func('int bpf_tc_detach(const bpf_tc_hook *hook, const bpf_tc_opts *opts)'),
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
  ioctl: libc.func('int ioctl(int fd, unsigned long req, void *arg)'),
  if_nametoindex: libc.func('unsigned int if_nametoindex(const char *name)'),
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *val, _Inout_ uint32_t *len)'),
};

export const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
export const MAP_FAILED = 0xffffffffffffffffn;
export const O_RDONLY = 0, O_DIRECTORY = 0o200000, O_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3, EPOLLIN = 1, EPOLLONESHOT = 1 << 30;
export const EFD_NONBLOCK = 0o4000, EFD_CLOEXEC = 0o2000000;

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
