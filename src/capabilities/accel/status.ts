// tcplens accel status: read back from the kernel what is attached where, the ports the loaded
// sock_ops program carries in its rodata, how many sockets are in the map, and the counters.
// Layouts come from the built object's BTF (opened, never loaded).
import type { BpfObject } from '../../kernel/bpf-object.js';
import { numPossibleCpus } from '../../kernel/bpf-map.js';
import { pinnedMap } from '../../kernel/pins.js';
import { cgroupOf, linkedProgram, withObject, type LinkedProgram, type PinnedStatus } from '../shared/pinned-status.js';
import { linkDetached } from '../shared/pinned-links.js';
import { lockHolder } from '../shared/lock.js';
import { ACCEL_LINK_PIN, ACCEL_OBJECT, ACCEL_PROGRAMS, accelLockPath, accelPinDir, readPinnedAccel, type AccelProgram } from './pinned.js';

export type AccelCounters = Record<'lost' | 'established' | 'filtered' | 'inserted' | 'not_local' | 'insert_failed' | 'redirected_msgs' |
  'redirected_bytes' | 'passed_msgs' | 'passed_bytes' | 'memory_high' | 'no_peer_msgs' | 'no_peer_bytes' | 'state_failed', number>;

export interface AccelProgramStatus extends LinkedProgram { program: AccelProgram; pin: string }

export interface AccelStatus extends PinnedStatus {
  programs: AccelProgramStatus[];
  /** empty: every port */
  ports: number[] | null;
  /** sockets in the SOCKHASH now (both ends of each accelerated connection) */
  sockets: number | null;
  counters: AccelCounters | null;
}

function withAccelObject<T>(fn: (obj: BpfObject) => T): T {
  return withObject(ACCEL_OBJECT, fn);
}

export function readAccelCounters(countersFd: number): AccelCounters {
  return withAccelObject((obj) => obj.struct('accel_counters').sumPerCpu(pinnedMap(countersFd).percpuValue(0), numPossibleCpus()) as AccelCounters);
}

/** The --port list from a rodata image (layout from the object's BTF). */
export function decodeAccelPorts(obj: BpfObject, image: Buffer): number[] {
  const vars = obj.btf.datasec('.rodata');
  const n = vars.get('port_count'), p = vars.get('ports');
  if (!n || !p) throw new Error('rodata has no port_count/ports');
  const count = image.readUInt32LE(n.offset);
  return Array.from({ length: Math.min(count, p.size / 2) }, (_, i) => image.readUInt16LE(p.offset + i * 2));
}


export function accelStatus(dir = accelPinDir()): AccelStatus {
  const st = readPinnedAccel(dir);
  const out: AccelStatus = {
    enabled: st.links.size > 0, complete: st.complete, dir, busy: lockHolder(accelLockPath(dir)), cgroup: null, programs: [], ports: null, sockets: null,
    counters: null, problems: [],
  };
  try {
    if (!st.exists) return out;
    out.cgroup = cgroupOf(st.cgroupId);
    for (const p of ACCEL_PROGRAMS) {
      const l = st.links.get(p);
      if (!l) {
        if (out.enabled) out.problems.push(`link ${ACCEL_LINK_PIN[p]} is missing`);
        continue;
      }
      if (linkDetached(l.info)) {
        out.problems.push(`link ${ACCEL_LINK_PIN[p]} is pinned but no longer attached`);
        continue;
      }
      out.programs.push({ program: p, pin: `${dir}/${ACCEL_LINK_PIN[p]}`, ...linkedProgram(l) });
    }
    for (const s of st.strays) out.problems.push(`unexpected pin ${s} (an interrupted run?)`);
    const rodataFd = st.maps.get('rodata');
    if (rodataFd !== undefined) {
      const image = pinnedMap(rodataFd).lookup(Buffer.alloc(4));
      if (image) {
        try { out.ports = withAccelObject((obj) => decodeAccelPorts(obj, image)); } catch (e) { out.problems.push(`configuration unreadable: ${(e as Error).message}`); }
      }
    } else if (out.enabled) out.problems.push('rodata pin is missing: configuration unknown');
    const socksFd = st.maps.get('socks');
    if (socksFd !== undefined) out.sockets = pinnedMap(socksFd).keys().length;
    const countersFd = st.maps.get('counters');
    if (countersFd !== undefined) out.counters = readAccelCounters(countersFd);
  } finally {
    st.close();
  }
  return out;
}
