// tcplens accel, user side: ports -> rodata, then the attach plan that leaves the programs in the
// kernel (pinned), reconfigures them without a moment where fast-path connections break, and
// removes them.
//
// Every program set shares one SOCKHASH (and the sockets' state, the active ends, the counters):
// a socket keeps running the sk_msg program it got when it entered the map (the kernel copies the
// map's program into the socket at insert), so old and new programs must agree on the maps.
// Enable over an enable on the same cgroup swaps both links' programs in place (BPF_LINK_UPDATE);
// on another cgroup the new sock_ops link is attached before the old one goes.
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { BpfObject } from '../../kernel/bpf-object.js';
import { objectPath } from '../../kernel/paths.js';
import { TcplensError } from '../../errors.js';
import { BPFFS_ROOT, bpffsDir, cgroupId, closeFd, createLink, onBpffs, pinFd, updateLink } from '../../kernel/pins.js';
import { removePin, retireLink, swapLinkPrograms, sweepStrays } from '../shared/pinned-links.js';
import { NEW_PREFIX, pinObjectMaps, removePinDir, reusePinnedMaps } from '../shared/pinned-dir.js';
import { withLock } from '../shared/lock.js';
import {
  ACCEL_LINK_PIN, ACCEL_MAP_PINS, ACCEL_OBJECT, ACCEL_PROGRAMS, ACCEL_SHARED_MAPS, accelLockPath, accelPinDir, readPinnedAccel,
  type AccelMapPin, type PinnedAccel,
} from './pinned.js';
import { readAccelCounters, type AccelCounters } from './status.js';

const LOCK_WHAT = 'tcplens accel enable/disable';
const LOCK_CODE = 'TCPLENS_ERR_ACCEL_STATE';
/** enum bpf_attach_type BPF_SK_MSG_VERDICT */
const BPF_SK_MSG_VERDICT = 7;
export const ACCEL_MAX_PORTS = 16;

export interface AccelConfig {
  /** cgroup v2 directory whose processes' connections are accelerated */
  cgroup: string;
  /** either end on one of these (empty: every port) */
  ports: number[];
}

export interface AccelEnableReport {
  dir: string;
  /** enabled: nothing was there; updated: programs swapped in place; replaced: new sock_ops link, old removed */
  action: 'enabled' | 'updated' | 'replaced';
  /** sockets already in the map stay accelerated (the map was carried over) */
  keptSockets: boolean;
  notes: string[];
}

export interface AccelDisableReport { dir: string; removed: string[]; counters: AccelCounters | null; notes: string[] }

export function checkAccelConfig(cfg: AccelConfig): void {
  if (!cfg.cgroup) {
    throw new TcplensError('TCPLENS_ERR_NO_CGROUP', 'accel needs --cgroup: redirection changes how applications\' data moves, so its scope is always named',
      'give the cgroup v2 directory of the applications, e.g. --cgroup /sys/fs/cgroup/unified/system.slice/app.service');
  }
  if (cfg.ports.length > ACCEL_MAX_PORTS) {
    throw new TcplensError('TCPLENS_ERR_BAD_PORT', `at most ${ACCEL_MAX_PORTS} --port values`, 'accelerate fewer services, or all of them (no --port)');
  }
  for (const p of cfg.ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new TcplensError('TCPLENS_ERR_BAD_PORT', `--port ${p}: expected 1..65535`, 'e.g. --port 6379');
  }
}

export function accelRodata(ports: number[]): Record<string, number | Uint8Array> {
  const image = new Uint8Array(ACCEL_MAX_PORTS * 2);
  const dv = new DataView(image.buffer);
  ports.forEach((p, i) => dv.setUint16(i * 2, p, true));
  return { port_count: ports.length, ports: image };
}

export function enableAccel(cfg: AccelConfig, dir = accelPinDir()): AccelEnableReport {
  checkAccelConfig(cfg);
  const notes: string[] = [];
  const mounted = bpffsDir(BPFFS_ROOT);
  if (mounted) notes.push(mounted);
  const wantCgroup = cgroupId(cfg.cgroup);
  return withLock(accelLockPath(dir), LOCK_WHAT, (lock) => {
    if (lock.staleTakenFrom !== null) notes.push(`took over a stale lock left by pid ${lock.staleTakenFrom}`);
    bpffsDir(dir);
    const old = readPinnedAccel(dir);
    try {
      const obj = BpfObject.open(objectPath(ACCEL_OBJECT));
      try {
        obj.setRodata(accelRodata(cfg.ports));
        const shared = reusePinnedMaps(obj, old.maps, ACCEL_SHARED_MAPS, misfitNote, notes);
        obj.load();
        const sameMap = shared.has('socks');
        let action: AccelEnableReport['action'];
        if (old.complete && sameMap && old.cgroupId === wantCgroup) {
          updateInPlace(obj, old);
          action = 'updated';
        } else {
          attachThenSwap(obj, old, cfg.cgroup, dir, sameMap);
          action = old.links.size ? 'replaced' : 'enabled';
        }
        pinObjectMaps(obj, 'accel', dir, ACCEL_MAP_PINS, shared);
        sweepAccelStrays(dir, notes);
        return { dir, action, keptSockets: sameMap, notes };
      } finally {
        obj.close(); // pinned links and maps live on
      }
    } finally {
      old.close();
    }
  }, LOCK_CODE);
}

/** Remove everything; null when nothing was enabled. Sockets leave the map when it is freed, and
 * go on as plain TCP sockets. */
export function disableAccel(dir = accelPinDir()): AccelDisableReport | null {
  if (!onBpffs(dir)) return null;
  return withLock(accelLockPath(dir), LOCK_WHAT, (lock) => {
    const notes = lock.staleTakenFrom !== null ? [`took over a stale lock left by pid ${lock.staleTakenFrom}`] : [];
    if (!onBpffs(dir)) return null;
    const st = readPinnedAccel(dir);
    let counters: AccelCounters | null = null;
    try {
      const fd = st.maps.get('counters');
      if (fd !== undefined) {
        try { counters = readAccelCounters(fd); } catch (e) { notes.push(`counters unreadable: ${(e as Error).message}`); }
      }
      // sock_ops first: nothing new enters the map while the rest goes.
      for (const p of [...ACCEL_PROGRAMS].reverse()) {
        const l = st.links.get(p);
        if (l) retireLink(l.fd);
      }
    } finally {
      st.close();
    }
    const removed = removePinDir(dir);
    return { dir, removed, counters, notes };
  }, LOCK_CODE);
}

function misfitNote(name: AccelMapPin): string {
  return `the pinned ${name} map has another layout (tcplens was upgraded): starting it afresh` +
    (name === 'socks' ? '; connections accelerated until now go on as plain TCP once the old map is gone' : '');
}

/** Swap each pinned link to its new program; on failure put back the ones already swapped. */
function updateInPlace(obj: BpfObject, old: PinnedAccel): void {
  swapLinkPrograms(ACCEL_PROGRAMS.map((p) => ({ linkFd: old.links.get(p)!.fd, oldProgId: old.links.get(p)!.info.progId, newProgFd: obj.program(p).fd })));
}

/** New links first (pinned under new-*), then the old ones detached, then the new pins renamed.
 * With the map carried over and its sk_msg link still there, that link is updated in place instead
 * (a SOCKHASH takes one sk_msg program). */
function attachThenSwap(obj: BpfObject, old: PinnedAccel, cgroup: string, dir: string, sameMap: boolean): void {
  const fresh: string[] = [];
  const oldMsg = old.links.get('accel_msg');
  const keepMsgLink = sameMap && oldMsg !== undefined;
  try {
    if (keepMsgLink) {
      updateLink(oldMsg.fd, obj.program('accel_msg').fd);
    } else {
      const path = join(dir, NEW_PREFIX + ACCEL_LINK_PIN.accel_msg);
      removePin(path);
      const fd = createLink(obj.program('accel_msg').fd, obj.map('socks').fd, BPF_SK_MSG_VERDICT, 'accel_msg on the socks map');
      try { pinFd(fd, path); } finally { closeFd(fd); }
      fresh.push(path);
    }
    const path = join(dir, NEW_PREFIX + ACCEL_LINK_PIN.accel_sockops);
    removePin(path);
    obj.attachCgroup('accel_sockops', cgroup).pin(path);
    fresh.push(path);
  } catch (e) {
    for (const path of fresh) removePin(path);
    throw e;
  }
  pauseForTests();
  const oldSockops = old.links.get('accel_sockops');
  if (oldSockops) retireLink(oldSockops.fd);
  if (oldMsg && !keepMsgLink) retireLink(oldMsg.fd);
  for (const path of fresh) renameSync(path, path.replace(`/${NEW_PREFIX}`, '/'));
}

/** Tests only: TCPLENS_ACCEL_TEST_PAUSE_MS holds an enable half way (new links attached, the old
 * ones not yet retired, the new pins not renamed) so a test can signal it there. */
function pauseForTests(): void {
  const ms = Number(process.env.TCPLENS_ACCEL_TEST_PAUSE_MS ?? 0);
  if (!(ms > 0)) return;
  process.stderr.write('tcplens: accel enable paused half way (TCPLENS_ACCEL_TEST_PAUSE_MS)\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function sweepAccelStrays(dir: string, notes: string[]): void {
  sweepStrays(dir, new Set<string>([...Object.values(ACCEL_LINK_PIN), ...ACCEL_MAP_PINS]), notes);
}
