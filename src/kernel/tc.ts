// TC clsact attachment through libbpf (bpf_tc_hook_create / bpf_tc_attach / bpf_tc_detach).
// Netlink talks to the network namespace of the calling thread, so a caller that wants another
// namespace switches the thread first (see src/lab/netns.ts). The filter holds the program, so an
// attachment outlives the process that made it: detach is explicit.
import { bpf, koffi, strerror } from './libbpf.js';
import { TcplensError } from '../errors.js';

const libc = koffi.load('libc.so.6');
const if_nametoindex = libc.func('unsigned int if_nametoindex(const char *name)');

/** enum bpf_tc_attach_point */
export const TC_INGRESS = 1, TC_EGRESS = 2;
export type TcPoint = typeof TC_INGRESS | typeof TC_EGRESS;
const BPF_TC_F_REPLACE = 1;
const EEXIST = 17, ENOENT = 2;

// struct bpf_tc_hook and struct bpf_tc_opts from /usr/include/bpf/libbpf.h (libbpf 1.x ABI:
// each starts with its own size, so libbpf accepts these exact byte layouts).
function hookStruct(ifindex: number, point: TcPoint): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(24n, 0); // sz
  b.writeInt32LE(ifindex, 8);
  b.writeUInt32LE(point, 12); // attach_point
  return b;                   // parent 0 at 16
}

function optsStruct(progFd: number, handle: number, priority: number, flags: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(32n, 0); // sz
  b.writeInt32LE(progFd, 8);
  b.writeUInt32LE(flags, 12);
  b.writeUInt32LE(handle, 20);
  b.writeUInt32LE(priority, 24);
  return b;                   // prog_id comes back at 16
}

export function ifindexOf(dev: string): number {
  const idx = if_nametoindex(dev) as number;
  if (!idx) {
    throw new TcplensError('TCPLENS_ERR_ATTACH', `no network interface '${dev}' in this namespace`, 'check `ip link`');
  }
  return idx;
}

export interface TcAttachment { dev: string; ifindex: number; point: TcPoint; handle: number; priority: number; progId: number }

/** Attach (or replace) a sched_cls program on dev's clsact hook; the hook is made if missing. */
export function tcAttach(dev: string, point: TcPoint, progFd: number, handle = 1, priority = 1): TcAttachment {
  const ifindex = ifindexOf(dev);
  const hook = hookStruct(ifindex, point);
  const rc = bpf.tc_hook_create(hook) as number;
  if (rc < 0 && -rc !== EEXIST) {
    throw new TcplensError('TCPLENS_ERR_ATTACH', `cannot create the clsact hook on ${dev}: ${strerror(rc)}`,
      'TC needs root and CONFIG_NET_CLS_ACT; see `tc qdisc show dev ' + dev + '`');
  }
  const opts = optsStruct(progFd, handle, priority, BPF_TC_F_REPLACE);
  const arc = bpf.tc_attach(hook, opts) as number;
  if (arc < 0) {
    throw new TcplensError('TCPLENS_ERR_ATTACH', `cannot attach the TC program on ${dev}: ${strerror(arc)}`,
      'see `tc filter show dev ' + dev + (point === TC_INGRESS ? ' ingress`' : ' egress`'));
  }
  return { dev, ifindex, point, handle, priority, progId: opts.readUInt32LE(16) };
}

/** Remove one filter; false if it was not there. */
export function tcDetach(dev: string, point: TcPoint, handle = 1, priority = 1): boolean {
  const hook = hookStruct(ifindexOf(dev), point);
  const rc = bpf.tc_detach(hook, optsStruct(0, handle, priority, 0)) as number;
  if (rc < 0 && -rc !== ENOENT) {
    throw new TcplensError('TCPLENS_ERR_ATTACH', `cannot detach the TC program on ${dev}: ${strerror(rc)}`, 'see `tc filter show`');
  }
  return rc === 0;
}
