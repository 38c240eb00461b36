// What toa's and accel's status read back alike: the program behind a pinned link with its cost
// (counted only while the kernel's BPF statistics are on), the cgroup a link is attached to, and
// the built object opened (never loaded) for its BTF layouts.
import { BpfObject } from '../../kernel/bpf-object.js';
import { objectPath } from '../../kernel/paths.js';
import { cgroup2Mount } from '../../kernel/cgroup.js';
import { cgroupPathById, closeFd, progFdById, progInfo } from '../../kernel/pins.js';
import type { PinnedLink } from './pinned-dir.js';

export interface LinkedProgram { linkId: number; progId: number; runCnt: number; runTimeNs: number; nsPerRun: number | null }

/** What every pinned capability's status holds (toa's and accel's add their configuration). */
export interface PinnedStatus {
  enabled: boolean;
  /** false: pins are missing or detached (an interrupted run); enable again or disable */
  complete: boolean;
  dir: string;
  /** pid of a tcplens enable/disable running now */
  busy: number | null;
  cgroup: { id: string; path: string | null } | null;
  programs: (LinkedProgram & { program: string; pin: string })[];
  problems: string[];
}

export function linkedProgram(l: PinnedLink): LinkedProgram {
  const fd = progFdById(l.info.progId);
  try {
    const i = progInfo(fd);
    return { linkId: l.info.id, progId: i.id, runCnt: i.runCnt, runTimeNs: i.runTimeNs, nsPerRun: i.runCnt ? Math.round(i.runTimeNs / i.runCnt) : null };
  } finally {
    closeFd(fd);
  }
}

/** A cgroup id as status shows it (0: the link is detached, so no path). */
export function cgroupOf(id: bigint | null): { id: string; path: string | null } | null {
  return id === null ? null : { id: id.toString(), path: id === 0n ? null : cgroupPathById(cgroup2Mount(), id) };
}

export function withObject<T>(source: string, fn: (obj: BpfObject) => T): T {
  const obj = BpfObject.open(objectPath(source));
  try {
    return fn(obj);
  } finally {
    obj.close();
  }
}
