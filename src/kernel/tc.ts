// TC clsact attachment through libbpf (bpf_tc_hook_create / bpf_tc_attach / bpf_tc_detach).
// Netlink talks to the network namespace of the calling thread, so a caller that wants another
// namespace switches the thread first (see src/lab/netns.ts). The filter holds the program, so an
// attachment outlives the process that made it: detach is explicit.
import { bpf, c, koffi, strerror, TcHook, TcOpts } from './libbpf.js';
import { TcplensError } from '../errors.js';

/** enum bpf_tc_attach_point */
export const TC_INGRESS = 1, TC_EGRESS = 2;
export type TcPoint = typeof TC_INGRESS | typeof TC_EGRESS;
const BPF_TC_F_REPLACE = 1;
const EEXIST = 17, ENOENT = 2;

function hook(ifindex: number, point: TcPoint) {
  return { sz: koffi.sizeof(TcHook), ifindex, attach_point: point, parent: 0 };
}

function opts(progFd: number, handle: number, priority: number, flags: number) {
  return { sz: koffi.sizeof(TcOpts), prog_fd: progFd, flags, prog_id: 0, handle, priority };
}

export function ifindexOf(dev: string): number {
  const idx = c.if_nametoindex(dev) as number;
  if (!idx) {
    throw new TcplensError('TCPLENS_ERR_ATTACH', `no network interface '${dev}' in this namespace`, 'check `ip link`');
  }
  return idx;
}

export interface TcAttachment { dev: string; ifindex: number; point: TcPoint; handle: number; priority: number; progId: number }

/** Attach (or replace) a sched_cls program on dev's clsact hook; the hook is made if missing. */
export function tcAttach(dev: string, point: TcPoint, progFd: number, handle = 1, priority = 1): TcAttachment {
  const ifindex = ifindexOf(dev);
  const h = hook(ifindex, point);
  const rc = bpf.tc_hook_create(h) as number;
  if (rc < 0 && -rc !== EEXIST) {
    throw new TcplensError('TCPLENS_ERR_ATTACH', `cannot create the clsact hook on ${dev}: ${strerror(rc)}`,
      'TC needs root and CONFIG_NET_CLS_ACT; see `tc qdisc show dev ' + dev + '`');
  }
  const o = opts(progFd, handle, priority, BPF_TC_F_REPLACE);
  const arc = bpf.tc_attach(h, o) as number; // fills in o.prog_id
  if (arc < 0) {
    throw new TcplensError('TCPLENS_ERR_ATTACH', `cannot attach the TC program on ${dev}: ${strerror(arc)}`,
      'see `tc filter show dev ' + dev + (point === TC_INGRESS ? ' ingress`' : ' egress`'));
  }
  return { dev, ifindex, point, handle, priority, progId: o.prog_id };
}

/** Remove one filter; false if it was not there. */
export function tcDetach(dev: string, point: TcPoint, handle = 1, priority = 1): boolean {
  const rc = bpf.tc_detach(hook(ifindexOf(dev), point), opts(0, handle, priority, 0)) as number;
  if (rc < 0 && -rc !== ENOENT) {
    throw new TcplensError('TCPLENS_ERR_ATTACH', `cannot detach the TC program on ${dev}: ${strerror(rc)}`, 'see `tc filter show`');
  }
  return rc === 0;
}
