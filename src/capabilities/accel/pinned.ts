// What `tcplens accel` leaves in the kernel, and where: the sock_ops link on the cgroup, the
// sk_msg link on the SOCKHASH, and the maps, pinned in one directory. The configuration (ports,
// cgroup) is read back from these, never from a side file that could disagree with what runs.
import { basename, join } from 'node:path';
import { linkDetached } from '../shared/pinned-links.js';
import { readPinnedDir, type PinnedDir } from '../shared/pinned-dir.js';

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

/** The pin directory: /sys/fs/bpf/tcplens/accel, or TCPLENS_ACCEL_PIN_DIR (tests). */
export function accelPinDir(): string {
  return process.env.TCPLENS_ACCEL_PIN_DIR || DEFAULT_ACCEL_PIN_DIR;
}

export function accelLockPath(dir: string): string {
  return join(ACCEL_LOCK_DIR, `accel-${basename(dir)}.lock`);
}

export interface PinnedAccel extends PinnedDir<AccelProgram, AccelMapPin> {
  /** id of the cgroup the sock_ops link is attached to (0: detached), null when no link */
  cgroupId: bigint | null;
  /** both links and every map are there, both still attached */
  complete: boolean;
}

/** Open everything pinned in dir (fds are the caller's until close()). */
export function readPinnedAccel(dir: string): PinnedAccel {
  const st = readPinnedDir(dir, ACCEL_LINK_PIN, ACCEL_MAP_PINS);
  const so = st.links.get('accel_sockops');
  return {
    ...st,
    cgroupId: so ? so.info.cgroupId : null,
    complete: st.links.size === ACCEL_PROGRAMS.length && st.maps.size === ACCEL_MAP_PINS.length && [...st.links.values()].every((l) => !linkDetached(l.info)),
  };
}
