// What `tcplens accel` leaves in the kernel, and where: the sock_ops link on the cgroup, the
// sk_msg link on the SOCKHASH, and the maps, pinned in one directory. The configuration (ports,
// cgroup) is read back from these, never from a side file that could disagree with what runs.
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { closeFd, linkInfo, openPinned, pinnedKind, onBpffs, type LinkInfo } from '../../kernel/pins.js';
import { linkDetached } from '../shared/pinned-links.js';

export const ACCEL_OBJECT = 'src/capabilities/accel/accel';
export const DEFAULT_ACCEL_PIN_DIR = '/sys/fs/bpf/tcplens/accel';
export const ACCEL_LOCK_DIR = '/run/tcplens';

/** Attach order: sk_msg on the map first, so every socket sock_ops puts in the map runs it. */
export const ACCEL_PROGRAMS = ['accel_msg', 'accel_sockops'] as const;
export type AccelProgram = typeof ACCEL_PROGRAMS[number];
export const ACCEL_LINK_PIN: Record<AccelProgram, string> = { accel_msg: 'msg', accel_sockops: 'sockops' };
/** Maps one program set hands to the next: sockets in the map, their state, active ends, totals. */
export const ACCEL_SHARED_MAPS = ['socks', 'sock_state', 'active_ends', 'counters'] as const;
export const ACCEL_MAP_PINS = [...ACCEL_SHARED_MAPS, 'rodata'] as const;
export type AccelMapPin = typeof ACCEL_MAP_PINS[number];
export const ACCEL_NEW_PREFIX = 'new-';

/** The pin directory: /sys/fs/bpf/tcplens/accel, or TCPLENS_ACCEL_PIN_DIR (tests). */
export function accelPinDir(): string {
  return process.env.TCPLENS_ACCEL_PIN_DIR || DEFAULT_ACCEL_PIN_DIR;
}

export function accelLockPath(dir: string): string {
  return join(ACCEL_LOCK_DIR, `accel-${basename(dir)}.lock`);
}

export interface PinnedAccel {
  dir: string;
  exists: boolean;
  links: Map<AccelProgram, { fd: number; info: LinkInfo }>;
  maps: Map<AccelMapPin, number>;
  strays: string[];
  /** id of the cgroup the sock_ops link is attached to (0: detached), null when no link */
  cgroupId: bigint | null;
  /** both links and every map are there, both still attached */
  complete: boolean;
  close(): void;
}

/** Open everything pinned in dir (fds are the caller's until close()). */
export function readPinnedAccel(dir: string): PinnedAccel {
  const links: PinnedAccel['links'] = new Map();
  const maps: PinnedAccel['maps'] = new Map();
  const strays: string[] = [];
  const exists = onBpffs(dir);
  const st: PinnedAccel = {
    dir, exists, links, maps, strays, cgroupId: null, complete: false,
    close: () => {
      for (const l of links.values()) closeFd(l.fd);
      for (const fd of maps.values()) closeFd(fd);
      links.clear();
      maps.clear();
    },
  };
  if (!exists) return st;
  try {
    const byPin = new Map(Object.entries(ACCEL_LINK_PIN).map(([p, n]) => [n, p as AccelProgram]));
    for (const name of readdirSync(dir)) {
      const prog = byPin.get(name);
      const isMap = (ACCEL_MAP_PINS as readonly string[]).includes(name);
      if (!prog && !isMap) {
        strays.push(name);
        continue;
      }
      const fd = openPinned(join(dir, name));
      if (fd === null) continue;
      const kind = pinnedKind(fd);
      if (prog && kind === 'link') links.set(prog, { fd, info: linkInfo(fd) });
      else if (isMap && kind === 'map') maps.set(name as AccelMapPin, fd);
      else {
        closeFd(fd);
        strays.push(name);
      }
    }
  } catch (e) {
    st.close();
    throw e;
  }
  const so = links.get('accel_sockops');
  st.cgroupId = so ? so.info.cgroupId : null;
  st.complete = links.size === ACCEL_PROGRAMS.length && maps.size === ACCEL_MAP_PINS.length && [...links.values()].every((l) => !linkDetached(l.info));
  return st;
}
