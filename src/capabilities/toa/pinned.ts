// What `tcplens toa` leaves in the kernel, and where: three cgroup links and three maps pinned in
// one directory. Everything else (trusted ranges, dialects, the cgroup) is read back from these,
// never from a side file that could disagree with what runs.
import { basename, join } from 'node:path';
import { readPinnedDir, type PinnedDir } from '../shared/pinned-dir.js';

export const TOA_OBJECT = 'src/capabilities/toa/toa';
export const DEFAULT_PIN_DIR = '/sys/fs/bpf/tcplens/toa';
export const LOCK_DIR = '/run/tcplens';

/** Attach order: the getpeername programs before sock_ops, so that no connection gets its client
 * stored before accept() can answer with it (its first answer and later ones then agree). */
export const PROGRAMS = ['toa_getpeername6', 'toa_getpeername4', 'toa_sockops'] as const;
export type ToaProgram = typeof PROGRAMS[number];
/** Detach order: sock_ops first, so nothing new is stored while the rest goes. */
export const DETACH_ORDER: readonly ToaProgram[] = [...PROGRAMS].reverse();

export const LINK_PIN: Record<ToaProgram, string> = { toa_sockops: 'sockops', toa_getpeername4: 'getpeername4', toa_getpeername6: 'getpeername6' };
export const MAP_PINS = ['clients', 'counters', 'rodata', 'syn_saved'] as const;
export type ToaMapPin = typeof MAP_PINS[number];

/** The pin directory: /sys/fs/bpf/tcplens/toa, or TCPLENS_TOA_PIN_DIR (tests, side-by-side setups). */
export function toaPinDir(): string {
  return process.env.TCPLENS_TOA_PIN_DIR || DEFAULT_PIN_DIR;
}

export function toaLockPath(dir: string): string {
  return join(LOCK_DIR, `${basename(dir)}.lock`);
}

export interface PinnedToa extends PinnedDir<ToaProgram, ToaMapPin> {
  /** every link and map is there, every link still attached, all to one cgroup */
  complete: boolean;
  cgroupId: bigint | null;
}

/** Open everything pinned in dir (fds are the caller's until close()). */
export function readPinned(dir: string): PinnedToa {
  const st: PinnedToa = { ...readPinnedDir(dir, LINK_PIN, MAP_PINS), complete: false, cgroupId: null };
  const ids = new Set([...st.links.values()].map((l) => l.info.cgroupId));
  st.cgroupId = ids.size === 1 ? [...ids][0] : null;
  // A detached cgroup link reports cgroup id 0: its pin is there, its program no longer runs.
  st.complete = st.links.size === PROGRAMS.length && st.maps.size === MAP_PINS.length && st.cgroupId !== null && st.cgroupId !== 0n;
  return st;
}
