// Can this machine run a capability? Checked before anything is loaded, so the user gets one
// clear error naming what is missing instead of a verifier or libbpf message.
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { bpf, c } from './libbpf.js';
import { kernelBtf } from './btf.js';
import { installLibbpfLog } from './libbpf-log.js';
import { TcplensError } from '../errors.js';

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new TcplensError('TCPLENS_ERR_NOT_ROOT', `${what} works with BPF programs and maps in the kernel and needs root`, `run it with sudo: sudo tcplens ${what}`);
  }
}

export function requireBtf(path = '/sys/kernel/btf/vmlinux'): void {
  if (!existsSync(path)) {
    throw new TcplensError('TCPLENS_ERR_NO_BTF', `this kernel exposes no BTF (${path} is missing)`,
      'tcplens needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distributions since 2020)');
  }
}

/** What every command that loads programs checks first: libbpf's output routed (verbose or
 *  summarised), root, and the kernel's BTF. */
export function requireKernel(what: string, verbose: boolean): void {
  installLibbpfLog(verbose);
  requireRoot(what);
  requireBtf();
}

// libbpf 1.1 cannot probe tracing (tp_btf) programs: they need an attach target; load() reports those.
const PROG_TYPES = {
  sock_ops: { type: 13, kernel: '4.13' },
  cgroup_sock_addr: { type: 18, kernel: '4.17' },
  sk_msg: { type: 16, kernel: '4.17' },
  socket_filter: { type: 1, kernel: '3.19' },
  sched_cls: { type: 3, kernel: '4.1' },
} as const;

const MAP_TYPES = {
  ringbuf: { type: 27, kernel: '5.8' },
  sk_storage: { type: 24, kernel: '5.2' },
  sockhash: { type: 18, kernel: '4.18' },
} as const;

export type ProgFeature = keyof typeof PROG_TYPES;
export type MapFeature = keyof typeof MAP_TYPES;

/** Probe program and map types in the running kernel; throw naming the first one missing. */
export function requireFeatures(progs: ProgFeature[], maps: MapFeature[] = []): void {
  for (const p of progs) {
    if ((bpf.probe_prog_type(PROG_TYPES[p].type, null) as number) !== 1) {
      throw new TcplensError('TCPLENS_ERR_UNSUPPORTED', `this kernel does not support BPF ${p} programs`,
        `requires Linux >= ${PROG_TYPES[p].kernel} with BPF enabled`);
    }
  }
  for (const m of maps) {
    if ((bpf.probe_map_type(MAP_TYPES[m].type, null) as number) !== 1) {
      throw new TcplensError('TCPLENS_ERR_UNSUPPORTED', `this kernel does not support BPF ${m} maps`,
        `requires Linux >= ${MAP_TYPES[m].kernel}`);
    }
  }
}

// Helpers whose availability differs between the kernels users run, per program type. `kernel`
// is the first kernel that allows it there (measured by scripts/kernel-matrix.sh where noted).
const HELPERS = {
  get_netns_cookie: { id: 122, sock_ops: '5.15' },
  get_socket_cookie: { id: 46, sock_ops: '5.7' },
  // refused in sock_ops on 6.12 (matrix), allowed on 6.18 (this project's host)
  get_current_comm: { id: 16, sock_ops: '6.13' },
} as const;
export type HelperFeature = keyof typeof HELPERS;

const helperCache = new Map<string, boolean>();

/** Can a program of this type call the helper? Loads a six-instruction program that calls it
 * (on the stack buffer / context it takes) and reports whether the verifier let it through. */
export function helperAvailable(prog: 'sock_ops', helper: HelperFeature): boolean {
  const key = `${prog}:${helper}`;
  const known = helperCache.get(key);
  if (known !== undefined) return known;
  const insns = Buffer.alloc(6 * 8);
  const put = (i: number, code: number, dst: number, src: number, off: number, imm: number) => {
    insns.writeUInt8(code, i * 8);
    insns.writeUInt8((src << 4) | dst, i * 8 + 1);
    insns.writeInt16LE(off, i * 8 + 2);
    insns.writeInt32LE(imm, i * 8 + 4);
  };
  // r1 = ctx (as given) or a 16-byte stack buffer with r2 = 16; call; r0 = 1; exit
  const onStack = helper === 'get_current_comm';
  let n = 0;
  if (onStack) {
    put(n++, 0xbf, 1, 10, 0, 0); // r1 = r10
    put(n++, 0x07, 1, 0, 0, -16); // r1 += -16
    put(n++, 0xb7, 2, 0, 0, 16); // r2 = 16
  }
  put(n++, 0x85, 0, 0, 0, HELPERS[helper].id);
  put(n++, 0xb7, 0, 0, 0, 1);
  put(n++, 0x95, 0, 0, 0, 0);
  const fd = bpf.prog_load(PROG_TYPES[prog].type, 'tcplens_probe', 'GPL', insns, n, null) as number;
  if (fd >= 0) c.close(fd);
  helperCache.set(key, fd >= 0);
  return fd >= 0;
}

/** Throw TCPLENS_ERR_UNSUPPORTED naming the first helper this kernel refuses to `prog` programs. */
export function requireHelpers(what: string, prog: 'sock_ops', helpers: HelperFeature[]): void {
  for (const h of helpers) {
    if (!helperAvailable(prog, h)) {
      throw new TcplensError('TCPLENS_ERR_UNSUPPORTED', `${what}: this kernel's ${prog} programs cannot call bpf_${h}`,
        `${what} needs Linux >= ${HELPERS[h][prog]} (this is ${kernelRelease()})`);
    }
  }
}

/** The parameter count of a function in the running kernel's BTF (a kfunc, or a traced
 * function), null when it has none. */
export function kernelFunctionParams(name: string): number | null {
  return kernelBtf().functionParams(name);
}

export function kernelHasFunction(name: string): boolean {
  return kernelFunctionParams(name) !== null;
}

/** kprobes and kretprobes need the kprobe PMU (CONFIG_KPROBES); this project's own host lacks it. */
export function kprobesAvailable(): boolean {
  return existsSync('/sys/bus/event_source/devices/kprobe');
}

export function kernelRelease(): string {
  return release();
}
