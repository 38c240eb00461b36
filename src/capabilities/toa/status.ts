// tcplens toa status: read back from the kernel what is attached where, the configuration the
// loaded programs carry in their rodata, the counters, and the programs' cost when the kernel's
// BPF statistics are on. Layouts come from the built object's BTF (opened, never loaded).
import type { BpfObject } from '../../kernel/bpf-object.js';
import { numPossibleCpus } from '../../kernel/bpf-map.js';
import { pinnedMap } from '../../kernel/pins.js';
import { cgroupOf, linkedProgram, withObject, type LinkedProgram, type PinnedStatus } from '../shared/pinned-status.js';
import { lockHolder } from '../shared/lock.js';
import { decodeToaTables, dialectText, rodataUint } from '../shared/toa-tables.js';
import { LINK_PIN, PROGRAMS, TOA_OBJECT, readPinned, toaLockPath, toaPinDir, type ToaProgram } from './pinned.js';

export type ToaCounters = Record<'lost' | 'connections' | 'stored' | 'rewritten' | 'answers' | 'untrusted' | 'conflict' | 'malformed' |
  'no_toa' | 'unrepresentable' | 'store_failed', number>;

/** runCnt/runTimeNs: kernel BPF statistics, counted only while they are enabled (sysctl kernel.bpf_stats_enabled) */
export interface ToaProgramStatus extends LinkedProgram { program: ToaProgram; pin: string }

export interface ToaStatus extends PinnedStatus {
  programs: ToaProgramStatus[];
  trusted: string[];
  dialects: string[];
  saveSyn: boolean | null;
  /** listeners with TCP_SAVE_SYN turned on by toa (disable turns it off again) */
  saveSynListeners: number;
  toaConflict: 'reject' | 'first' | null;
  counters: ToaCounters | null;
}

export function withToaObject<T>(fn: (obj: BpfObject) => T): T {
  return withObject(TOA_OBJECT, fn);
}

export function readToaCounters(obj: BpfObject, countersFd: number): ToaCounters {
  const m = pinnedMap(countersFd);
  return obj.struct('toa_counters').sumPerCpu(m.percpuValue(0), numPossibleCpus()) as ToaCounters;
}


export function toaStatus(dir = toaPinDir()): ToaStatus {
  const st = readPinned(dir);
  const out: ToaStatus = {
    enabled: st.links.size > 0, complete: st.complete, dir, busy: lockHolder(toaLockPath(dir)), cgroup: null, programs: [],
    trusted: [], dialects: [], saveSyn: null, saveSynListeners: 0, toaConflict: null, counters: null, problems: [],
  };
  try {
    if (!st.exists) return out;
    out.cgroup = cgroupOf(st.cgroupId);
    for (const p of PROGRAMS) {
      const l = st.links.get(p);
      if (!l) {
        if (out.enabled) out.problems.push(`link ${LINK_PIN[p]} is missing`);
        continue;
      }
      if (l.info.cgroupId === 0n) out.problems.push(`link ${LINK_PIN[p]} is pinned but no longer attached`);
      out.programs.push({ program: p, pin: `${dir}/${LINK_PIN[p]}`, ...linkedProgram(l) });
    }
    if (st.cgroupId === null && st.links.size > 1) out.problems.push('the links are attached to different cgroups');
    for (const s of st.strays) out.problems.push(`unexpected pin ${s} (an interrupted run?)`);
    withToaObject((obj) => {
      const rodataFd = st.maps.get('rodata');
      if (rodataFd !== undefined) {
        const m = pinnedMap(rodataFd);
        const image = m.lookup(Buffer.alloc(4));
        if (image) {
          try {
            const t = decodeToaTables(obj, image);
            out.trusted = t.trusted.map((c) => c.text);
            out.dialects = t.dialects.map(dialectText);
            out.saveSyn = rodataUint(obj, image, 'save_syn') !== 0;
            out.toaConflict = rodataUint(obj, image, 'conflict_take_first') !== 0 ? 'first' : 'reject';
          } catch (e) {
            out.problems.push(`configuration unreadable: ${(e as Error).message}`);
          }
        }
      } else if (out.enabled) out.problems.push('rodata pin is missing: configuration unknown');
      const synFd = st.maps.get('syn_saved');
      if (synFd !== undefined) out.saveSynListeners = pinnedMap(synFd).keys().length;
      const countersFd = st.maps.get('counters');
      if (countersFd !== undefined) out.counters = readToaCounters(obj, countersFd);
    });
  } finally {
    st.close();
  }
  return out;
}
