// tcplens accel status: read back from the kernel what is attached where, the ports the loaded
// sock_ops program carries in its rodata, how many sockets are in the map, and the counters.
// Layouts come from the built object's BTF (opened, never loaded).
import { BpfObject } from '../../kernel/bpf-object.js';
import { objectPath } from '../../kernel/paths.js';
import { numPossibleCpus } from '../../kernel/bpf-map.js';
import { cgroup2Mount } from '../../kernel/cgroup.js';
import { cgroupPathById, closeFd, pinnedMap, progFdById, progInfo } from '../../kernel/pins.js';
import { linkDetached } from '../shared/pinned-links.js';
import { lockHolder } from '../shared/lock.js';
import { ACCEL_LINK_PIN, ACCEL_OBJECT, ACCEL_PROGRAMS, accelLockPath, accelPinDir, readPinnedAccel, type AccelProgram } from './pinned.js';

export type AccelCounters = Record<'lost' | 'established' | 'filtered' | 'inserted' | 'not_local' | 'insert_failed' | 'redirected_msgs' |
  'redirected_bytes' | 'passed_msgs' | 'passed_bytes' | 'memory_high' | 'no_peer_msgs' | 'no_peer_bytes' | 'state_failed', number>;

export interface AccelProgramStatus { program: AccelProgram; pin: string; linkId: number; progId: number; runCnt: number; nsPerRun: number | null }

export interface AccelStatus {
  enabled: boolean;
  /** false: pins missing or detached (an interrupted run); enable again or disable */
  complete: boolean;
  dir: string;
  busy: number | null;
  cgroup: { id: string; path: string | null } | null;
  programs: AccelProgramStatus[];
  /** empty: every port */
  ports: number[] | null;
  /** sockets in the SOCKHASH now (both ends of each accelerated connection) */
  sockets: number | null;
  counters: AccelCounters | null;
  problems: string[];
}

function withAccelObject<T>(fn: (obj: BpfObject) => T): T {
  const obj = BpfObject.open(objectPath(ACCEL_OBJECT));
  try {
    return fn(obj);
  } finally {
    obj.close();
  }
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
    if (st.cgroupId !== null) {
      out.cgroup = { id: st.cgroupId.toString(), path: st.cgroupId === 0n ? null : cgroupPathById(cgroup2Mount(), st.cgroupId) };
    }
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
      const fd = progFdById(l.info.progId);
      try {
        const i = progInfo(fd);
        out.programs.push({ program: p, pin: `${dir}/${ACCEL_LINK_PIN[p]}`, linkId: l.info.id, progId: i.id, runCnt: i.runCnt,
          nsPerRun: i.runCnt ? Math.round(i.runTimeNs / i.runCnt) : null });
      } finally {
        closeFd(fd);
      }
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
