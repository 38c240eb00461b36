// tcplens toa, user side: configuration -> rodata, then the attach plan that leaves the programs
// in the kernel (pinned), replaces them without a moment of wrong answers, and removes them.
//
// Enable with something already enabled on the same cgroup swaps each link's program in place
// (BPF_LINK_UPDATE): there is no instant with no program or with two. On another cgroup (or after
// an interrupted run) the new links are attached first and the old ones detached after.
// Either way the new programs share the old `clients` socket-storage map, so connections that
// got their client under the old configuration keep it. A disable frees the map with everything
// in it; a later enable starts a new one, so connections accepted before that enable keep seeing
// the balancer (never someone else's address).
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { BpfObject } from '../../kernel/bpf-object.js';
import { objectPath } from '../../kernel/paths.js';
import { TcplensError } from '../../errors.js';
import { BPFFS_ROOT, bpffsDir, cgroupId, onBpffs } from '../../kernel/pins.js';
import { removePin, retireLink, swapLinkPrograms, sweepStrays } from '../shared/pinned-links.js';
import { NEW_PREFIX, pinObjectMaps, removePinDir, reusePinnedMaps } from '../shared/pinned-dir.js';
import type { Cidr } from '../../net/addr.js';
import type { ToaDialect } from '../../net/toa.js';
import { withLock } from '../shared/lock.js';
import { undoSaveSyn, type SaveSynUndo } from '../shared/save-syn.js';
import { MAX_TRUSTED, toaTablesRodata } from '../shared/toa-tables.js';
import {
  DETACH_ORDER, LINK_PIN, MAP_PINS, PROGRAMS, TOA_OBJECT, readPinned, toaLockPath, toaPinDir, type PinnedToa, type ToaMapPin,
} from './pinned.js';
import { readToaCounters, withToaObject, type ToaCounters } from './status.js';

export { TOA_OBJECT } from './pinned.js';
const LOCK_WHAT = 'tcplens toa enable/disable';
/** Maps handed from one set of programs to the next: connections' clients, running totals, and the
 * listeners whose TCP_SAVE_SYN we turned on (so a later disable still undoes it). */
const SHARED_MAPS = ['clients', 'counters', 'syn_saved'] as const;

export interface ToaConfig {
  /** cgroup v2 directory whose servers get real clients */
  cgroup: string;
  trusted: Cidr[];
  dialects: ToaDialect[];
  /** two TOAs in one header: believe none (reject), or the first */
  toaConflict: 'reject' | 'first';
  /** keep SYNs (TCP_SAVE_SYN on listeners opened from now on; turned off again by disable) */
  saveSyn: boolean;
}

export interface EnableReport {
  dir: string;
  /** enabled: nothing was there; updated: programs swapped in place; replaced: new links, old removed */
  action: 'enabled' | 'updated' | 'replaced';
  /** connections from before keep their real client (the clients map was carried over) */
  keptClients: boolean;
  notes: string[];
}

export interface DisableReport { dir: string; removed: string[]; counters: ToaCounters | null; saveSyn: SaveSynUndo | null; notes: string[] }

/** The rules a configuration must meet wherever it comes from (the CLI checks them first too). */
export function checkToaConfig(cfg: ToaConfig): void {
  if (cfg.trusted.length === 0) {
    throw new TcplensError('TCPLENS_ERR_BAD_CIDR', 'toa needs --trusted-lb: without it any client could name any address',
      'give your balancers\' addresses, e.g. --trusted-lb 10.0.0.0/24 --trusted-lb fd00::5');
  }
  if (cfg.trusted.length > MAX_TRUSTED) {
    throw new TcplensError('TCPLENS_ERR_BAD_CIDR', `at most ${MAX_TRUSTED} --trusted-lb ranges`, 'merge neighbouring ranges into wider CIDRs');
  }
  const everyone = cfg.trusted.find((c) => c.prefix === 0);
  if (everyone) {
    throw new TcplensError('TCPLENS_ERR_BAD_CIDR', `--trusted-lb ${everyone.text} trusts every peer, so any client could forge its address`,
      'name the balancers only, e.g. --trusted-lb 10.0.0.0/24');
  }
}

export function enableToa(cfg: ToaConfig, dir = toaPinDir()): EnableReport {
  checkToaConfig(cfg);
  const notes: string[] = [];
  const mounted = bpffsDir(BPFFS_ROOT); // mounts one if the machine has none
  if (mounted) notes.push(mounted);
  return withLock(toaLockPath(dir), LOCK_WHAT, (lock) => {
    if (lock.staleTakenFrom !== null) notes.push(`took over a stale lock left by pid ${lock.staleTakenFrom}`);
    bpffsDir(dir); // under the lock: nothing of ours appears while another enable holds it
    const old = readPinned(dir);
    try {
      const obj = BpfObject.open(objectPath(TOA_OBJECT));
      try {
        obj.setRodata({ ...toaTablesRodata(obj, cfg), save_syn: cfg.saveSyn ? 1 : 0, conflict_take_first: cfg.toaConflict === 'first' ? 1 : 0 });
        const shared = reusePinnedMaps(obj, old.maps, SHARED_MAPS, misfitNote, notes);
        obj.load();
        let action: EnableReport['action'];
        if (old.complete && old.cgroupId === cgroupId(cfg.cgroup)) {
          updateInPlace(obj, old);
          action = 'updated';
        } else {
          attachThenSwap(obj, old, cfg.cgroup, dir);
          action = old.links.size ? 'replaced' : 'enabled';
        }
        pinObjectMaps(obj, 'toa', dir, MAP_PINS, shared);
        sweepToaStrays(dir, notes);
        return { dir, action, keptClients: shared.has('clients'), notes };
      } finally {
        obj.close(); // pinned links and maps live on; anything unpinned goes with it
      }
    } finally {
      old.close();
    }
  });
}

/** Remove everything; null when nothing was enabled. */
export function disableToa(dir = toaPinDir()): DisableReport | null {
  if (!onBpffs(dir)) return null;
  return withLock(toaLockPath(dir), LOCK_WHAT, (lock) => {
    const notes = lock.staleTakenFrom !== null ? [`took over a stale lock left by pid ${lock.staleTakenFrom}`] : [];
    if (!onBpffs(dir)) return null;
    const st = readPinned(dir);
    let counters: ToaCounters | null = null;
    let saveSyn: SaveSynUndo | null = null;
    try {
      const fd = st.maps.get('counters');
      if (fd !== undefined) {
        try { counters = withToaObject((obj) => readToaCounters(obj, fd)); } catch (e) { notes.push(`counters unreadable: ${(e as Error).message}`); }
      }
      for (const p of DETACH_ORDER) {
        const l = st.links.get(p);
        if (l) retireLink(l.fd);
      }
      // Only once nothing can turn it on again: off where we turned it on.
      const syn = st.maps.get('syn_saved');
      if (syn !== undefined) {
        try { saveSyn = restoreSaveSyn(syn); } catch (e) { notes.push(`TCP_SAVE_SYN could not be turned off again: ${(e as Error).message}`); }
      }
    } finally {
      st.close();
    }
    const removed = removePinDir(dir);
    return { dir, removed, counters, saveSyn, notes };
  });
}

/** Load the toa programs (never attached) around the pinned syn_saved map, and run the undo iterator. */
function restoreSaveSyn(synFd: number): SaveSynUndo {
  return withToaObject((obj) => {
    obj.reuseMap('syn_saved', synFd);
    obj.load();
    return undoSaveSyn(obj);
  });
}

function misfitNote(name: ToaMapPin): string {
  return name === 'clients'
    ? 'the pinned clients map has another layout (tcplens was upgraded): connections accepted before now are no longer rewritten'
    : `the pinned ${name} map has another layout: starting it afresh`;
}

/** Swap each pinned link to its new program; on failure put back the ones already swapped. */
function updateInPlace(obj: BpfObject, old: PinnedToa): void {
  swapLinkPrograms(PROGRAMS.map((p) => ({ linkFd: old.links.get(p)!.fd, oldProgId: old.links.get(p)!.info.progId, newProgFd: obj.program(p).fd })));
}

/** New links first (pinned under new-*), then the old ones detached, then the new pins renamed. */
function attachThenSwap(obj: BpfObject, old: PinnedToa, cgroup: string, dir: string): void {
  const fresh: string[] = [];
  try {
    for (const p of PROGRAMS) {
      const path = join(dir, NEW_PREFIX + LINK_PIN[p]);
      removePin(path); // an interrupted run's leftover under the same name
      obj.attachCgroup(p, cgroup).pin(path);
      fresh.push(path);
    }
  } catch (e) {
    for (const path of fresh) removePin(path);
    throw e;
  }
  for (const p of DETACH_ORDER) {
    const l = old.links.get(p);
    if (l) retireLink(l.fd);
  }
  for (const p of PROGRAMS) renameSync(join(dir, NEW_PREFIX + LINK_PIN[p]), join(dir, LINK_PIN[p]));
}

function sweepToaStrays(dir: string, notes: string[]): void {
  sweepStrays(dir, new Set<string>([...Object.values(LINK_PIN), ...MAP_PINS]), notes);
}
