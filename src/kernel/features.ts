// Can this machine run a capability? Checked before anything is loaded, so the user gets one
// clear error naming what is missing instead of a verifier or libbpf message.
import { existsSync } from 'node:fs';
import { bpf } from './libbpf.js';
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
