// What `tcplens toa` leaves in the kernel, and where: three cgroup links and three maps pinned in
// one directory. Everything else (trusted ranges, dialects, the cgroup) is read back from these,
// never from a side file that could disagree with what runs.
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { closeFd, linkInfo, openPinned, pinnedKind, onBpffs, type LinkInfo } from '../../kernel/pins.js';

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
/** Pins made under this prefix are a run's new objects until it renames them into place. */
export const NEW_PREFIX = 'new-';

/** The pin directory: /sys/fs/bpf/tcplens/toa, or TCPLENS_TOA_PIN_DIR (tests, side-by-side setups). */
export function toaPinDir(): string {
  return process.env.TCPLENS_TOA_PIN_DIR || DEFAULT_PIN_DIR;
}

export function toaLockPath(dir: string): string {
  return join(LOCK_DIR, `${basename(dir)}.lock`);
}

export interface PinnedLink { fd: number; info: LinkInfo }

export interface PinnedToa {
  dir: string;
  /** the directory exists on a bpf filesystem */
  exists: boolean;
  links: Map<ToaProgram, PinnedLink>;
  maps: Map<ToaMapPin, number>;
  /** entries that are not one of ours by name (an interrupted run's new-* pins, say) */
  strays: string[];
  /** every link and map is there, every link still attached, all to one cgroup */
  complete: boolean;
  cgroupId: bigint | null;
  close(): void;
}

/** Open everything pinned in dir (fds are the caller's until close()). */
export function readPinned(dir: string): PinnedToa {
  const links = new Map<ToaProgram, PinnedLink>();
  const maps = new Map<ToaMapPin, number>();
  const strays: string[] = [];
  const exists = onBpffs(dir);
  const st: PinnedToa = {
    dir, exists, links, maps, strays, complete: false, cgroupId: null,
    close: () => {
      for (const l of links.values()) closeFd(l.fd);
      for (const fd of maps.values()) closeFd(fd);
      links.clear();
      maps.clear();
    },
  };
  if (!exists) return st;
  try {
    const byPin = new Map(Object.entries(LINK_PIN).map(([p, n]) => [n, p as ToaProgram]));
    for (const name of readdirSync(dir)) {
      const prog = byPin.get(name);
      const isMap = (MAP_PINS as readonly string[]).includes(name);
      if (!prog && !isMap) {
        strays.push(name);
        continue;
      }
      const fd = openPinned(join(dir, name));
      if (fd === null) continue;
      const kind = pinnedKind(fd);
      if (prog && kind === 'link') links.set(prog, { fd, info: linkInfo(fd) });
      else if (isMap && kind === 'map') maps.set(name as ToaMapPin, fd);
      else {
        closeFd(fd);
        strays.push(name);
      }
    }
  } catch (e) {
    st.close();
    throw e;
  }
  const ids = new Set([...links.values()].map((l) => l.info.cgroupId));
  st.cgroupId = ids.size === 1 ? [...ids][0] : null;
  // A detached cgroup link reports cgroup id 0: its pin is there, its program no longer runs.
  st.complete = links.size === PROGRAMS.length && maps.size === MAP_PINS.length && st.cgroupId !== null && st.cgroupId !== 0n;
  return st;
}
