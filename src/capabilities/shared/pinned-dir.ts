// A capability's pin directory, read back and written the same way for toa and accel: which pins
// are links and which are maps is the caller's table; everything else found there is a stray
// (an interrupted run's new-* pins, say). Also the map side of an enable (carry the old maps over
// when their layout fits, pin the new ones in one step) and removing the directory at disable.
import { readdirSync, renameSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BpfObject } from '../../kernel/bpf-object.js';
import { BPFFS_ROOT, closeFd, linkInfo, mapInfo, onBpffs, openPinned, pinFd, pinnedKind, type LinkInfo } from '../../kernel/pins.js';
import { removePin } from './pinned-links.js';

/** Pins made under this prefix are a run's new objects until it renames them into place. */
export const NEW_PREFIX = 'new-';

export interface PinnedLink { fd: number; info: LinkInfo }

export interface PinnedDir<P extends string, M extends string> {
  dir: string;
  /** the directory exists on a bpf filesystem */
  exists: boolean;
  links: Map<P, PinnedLink>;
  maps: Map<M, number>;
  /** entries that are not one of ours by name, or not of the kind their name says */
  strays: string[];
  close(): void;
}

/** Open everything pinned in dir (fds are the caller's until close()). */
export function readPinnedDir<P extends string, M extends string>(dir: string, linkPins: Record<P, string>, mapPins: readonly M[]): PinnedDir<P, M> {
  const links = new Map<P, PinnedLink>();
  const maps = new Map<M, number>();
  const strays: string[] = [];
  const exists = onBpffs(dir);
  const st: PinnedDir<P, M> = {
    dir, exists, links, maps, strays,
    close: () => {
      for (const l of links.values()) closeFd(l.fd);
      for (const fd of maps.values()) closeFd(fd);
      links.clear();
      maps.clear();
    },
  };
  if (!exists) return st;
  try {
    const byPin = new Map((Object.entries(linkPins) as [P, string][]).map(([p, n]) => [n, p]));
    for (const name of readdirSync(dir)) {
      const prog = byPin.get(name);
      const isMap = (mapPins as readonly string[]).includes(name);
      if (!prog && !isMap) {
        strays.push(name);
        continue;
      }
      const fd = openPinned(join(dir, name));
      if (fd === null) continue;
      const kind = pinnedKind(fd);
      if (prog && kind === 'link') links.set(prog, { fd, info: linkInfo(fd) });
      else if (isMap && kind === 'map') maps.set(name as M, fd);
      else {
        closeFd(fd);
        strays.push(name);
      }
    }
  } catch (e) {
    st.close();
    throw e;
  }
  return st;
}

/** Hand each pinned map to the new object when its layout still fits; a misfit (tcplens was
 * upgraded) starts afresh and gets a note from `misfit`. Returns the names handed over. */
export function reusePinnedMaps<M extends string>(obj: BpfObject, pinned: Map<M, number>, names: readonly M[], misfit: (name: M) => string,
  notes: string[]): Set<M> {
  const shared = new Set<M>();
  for (const name of names) {
    const fd = pinned.get(name);
    if (fd === undefined) continue;
    const want = obj.map(name);
    const have = mapInfo(fd);
    if (have.type !== want.type || have.keySize !== want.keySize || have.valueSize !== want.valueSize || have.maxEntries !== want.maxEntries) {
      notes.push(misfit(name));
      continue;
    }
    obj.reuseMap(name, fd);
    shared.add(name);
  }
  return shared;
}

/** Pin what the new object made for itself (the pin "rodata" is the object's "<object>.rodata"):
 * under new-NAME first, then renamed over the old pin in one step. */
export function pinObjectMaps<M extends string>(obj: BpfObject, objectName: string, dir: string, names: readonly M[], shared: Set<M>): void {
  for (const name of names) {
    if (shared.has(name)) continue;
    const fd = obj.map(name === 'rodata' ? `${objectName}.rodata` : name).fd;
    const tmp = join(dir, NEW_PREFIX + name);
    removePin(tmp);
    pinFd(fd, tmp);
    renameSync(tmp, join(dir, name));
  }
}

/** Unpin everything in dir (links detached first), remove it, and its parent under the bpffs root
 * when nothing else pins there. Returns the names removed. */
export function removePinDir(dir: string): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    removePin(join(dir, name));
    removed.push(name);
  }
  rmdirSync(dir);
  const parent = dirname(dir);
  if (parent !== BPFFS_ROOT && parent.startsWith(`${BPFFS_ROOT}/`)) {
    try { rmdirSync(parent); } catch { /* other capabilities still pin there */ }
  }
  return removed;
}
