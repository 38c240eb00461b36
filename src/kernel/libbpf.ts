// Typed bindings to the system libbpf.so.1 through koffi (no native build step). Pointers are
// BigInt (koffi 3). Only this file and libc.ts name C symbols; everything else goes through
// BpfObject, RingBufferReader and friends.
import koffi, { type LibraryHandle } from 'koffi';
import { TcplensError } from '../errors.js';
import { c } from './libc.js';

export { c, SockaddrIn, SockaddrIn6, Linger, POLLERR, POLLHUP } from './libc.js';

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
  program_attach: lib.func('void *bpf_program__attach(void *prog)'),
  link_destroy: lib.func('int bpf_link__destroy(void *link)'),
  link_fd: lib.func('int bpf_link__fd(void *link)'),
  program_attach_iter: lib.func('void *bpf_program__attach_iter(void *prog, void *opts)'),
  iter_create: lib.func('int bpf_iter_create(int link_fd)'),
  link_pin: lib.func('int bpf_link__pin(void *link, const char *path)'),
  link_update: lib.func('int bpf_link_update(int link_fd, int new_prog_fd, void *opts)'),
  link_detach: lib.func('int bpf_link_detach(int link_fd)'),
  link_create: lib.func('int bpf_link_create(int prog_fd, int target_fd, int attach_type, void *opts)'),
  prog_get_fd_by_id: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
  link_get_fd_by_id: lib.func('int bpf_link_get_fd_by_id(uint32_t id)'),
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
  btf_load_vmlinux: lib.func('void *btf__load_vmlinux_btf(void)'),
  btf_type_by_id: lib.func('void *btf__type_by_id(void *btf, uint32_t id)'),
  btf_name_by_offset: lib.func('const char *btf__name_by_offset(void *btf, uint32_t offset)'),
  // probes and logging
  probe_prog_type: lib.func('int libbpf_probe_bpf_prog_type(int type, void *opts)'),
  prog_load: lib.func('int bpf_prog_load(int type, const char *name, const char *license, const void *insns, size_t insn_cnt, void *opts)'),
  probe_map_type: lib.func('int libbpf_probe_bpf_map_type(int type, void *opts)'),
  set_print: lib.func('void *libbpf_set_print(void *fn)'),
  num_possible_cpus: lib.func('int libbpf_num_possible_cpus(void)'),
};


export const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
export const MAP_FAILED = 0xffffffffffffffffn;
export const O_RDONLY = 0, O_DIRECTORY = 0o200000, O_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLLIN = 1, EPOLLONESHOT = 1 << 30;
export const EFD_NONBLOCK = 0o4000, EFD_CLOEXEC = 0o2000000;
// struct epoll_event { u32 events; u64 data } is packed on x86-64 only.
export const EPOLL_EVENT = process.arch === 'x64' ? 12 : 16;
export const EPOLL_DATA = process.arch === 'x64' ? 4 : 8;
export const EPOLLOUT = 4, EPOLLERR = 8, EPOLLHUP = 0x10;
export const AF_INET = 2, AF_INET6 = 10, SOCK_STREAM = 1, SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1, SO_ERROR = 4, SO_LINGER = 13, SO_ATTACH_BPF = 50, SO_COOKIE = 57;

export const MapType = { RINGBUF: 27, SK_STORAGE: 24, SOCKHASH: 18, LRU_HASH: 9 } as const;

/** struct bpf_test_run_opts (libbpf.h, libbpf 1.x): libbpf reads as much of it as sz says. */
const TestRunOpts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t', data_in: 'void *', data_out: 'void *', data_size_in: 'uint32_t', data_size_out: 'uint32_t',
  ctx_in: 'void *', ctx_out: 'void *', ctx_size_in: 'uint32_t', ctx_size_out: 'uint32_t',
  retval: 'uint32_t', repeat: 'int', duration: 'uint32_t', flags: 'uint32_t', cpu: 'uint32_t', batch_size: 'uint32_t',
});
const at = (field: string) => koffi.offsetof(TestRunOpts, field);

export interface TestRunIn { dataIn?: Buffer; dataOut?: Buffer; ctxIn?: Buffer; repeat?: number }

/** A bpf_test_run_opts in a buffer (kept as bytes so the call can also run async); the buffers
 * it points to must stay alive until the run returns. */
export function testRunOpts(v: TestRunIn): Buffer {
  const b = Buffer.alloc(koffi.sizeof(TestRunOpts));
  b.writeBigUInt64LE(BigInt(b.length), at('sz'));
  if (v.dataIn) { b.writeBigUInt64LE(koffi.address(v.dataIn), at('data_in')); b.writeUInt32LE(v.dataIn.length, at('data_size_in')); }
  if (v.dataOut) { b.writeBigUInt64LE(koffi.address(v.dataOut), at('data_out')); b.writeUInt32LE(v.dataOut.length, at('data_size_out')); }
  if (v.ctxIn) { b.writeBigUInt64LE(koffi.address(v.ctxIn), at('ctx_in')); b.writeUInt32LE(v.ctxIn.length, at('ctx_size_in')); }
  // 0 means once for packet programs; raw_tp and syscall programs refuse anything else.
  b.writeInt32LE(v.repeat ?? 0, at('repeat'));
  return b;
}

export function testRunResult(opts: Buffer): { retval: number; duration: number; dataSizeOut: number } {
  return { retval: opts.readUInt32LE(at('retval')), duration: opts.readUInt32LE(at('duration')), dataSizeOut: opts.readUInt32LE(at('data_size_out')) };
}

export function errno(): number {
  return koffi.errno();
}

export function strerror(err: number): string {
  return c.strerror(Math.abs(err)) as string;
}

export function view(ptr: Ptr, len: number): ArrayBuffer {
  return koffi.view(ptr, len);
}

export function isNull(p: unknown): boolean {
  return p === null || p === undefined || p === 0n || p === 0;
}

export { koffi };
