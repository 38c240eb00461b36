// What every capability that stays in the kernel (toa, accel) does with its pins: swap the
// programs behind pinned links in one step, detach and unpin, sweep an interrupted run's leftovers.
// Which pins mean what stays the capability's business.
import { readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { closeFd, detachLink, linkInfo, openPinned, pinnedKind, progFdById, updateLink, type LinkInfo } from '../../kernel/pins.js';

const BPF_LINK_TYPE_CGROUP = 3;
const BPF_LINK_TYPE_SOCKMAP = 14;

/** A link whose target went (its cgroup or map id reads 0): pinned, but no longer runs. The
 * union of bpf_link_info starts with cgroup_id (u64) for cgroup links, map_id (u32) for sockmap. */
export function linkDetached(i: LinkInfo): boolean {
  if (i.type === BPF_LINK_TYPE_CGROUP) return i.cgroupId === 0n;
  if (i.type === BPF_LINK_TYPE_SOCKMAP) return (i.cgroupId & 0xffffffffn) === 0n;
  return false;
}

/** Swap each link to its new program (BPF_LINK_UPDATE); on failure put back the ones swapped. */
export function swapLinkPrograms(swaps: { linkFd: number; oldProgId: number; newProgFd: number }[]): void {
  const done: { linkFd: number; oldProgFd: number }[] = [];
  const oldProgs: number[] = [];
  try {
    for (const s of swaps) {
      const oldProgFd = progFdById(s.oldProgId);
      oldProgs.push(oldProgFd);
      updateLink(s.linkFd, s.newProgFd);
      done.push({ linkFd: s.linkFd, oldProgFd });
    }
  } catch (e) {
    for (const s of done.reverse()) {
      try { updateLink(s.linkFd, s.oldProgFd); } catch { /* best effort: the old program is still loaded */ }
    }
    throw e;
  } finally {
    for (const fd of oldProgs) closeFd(fd);
  }
}

/** Detach a link; one already detached needs nothing. */
export function retireLink(fd: number): void {
  try {
    detachLink(fd);
  } catch (e) {
    if (!linkDetached(linkInfo(fd))) throw e;
  }
}

/** Unpin path; a link pinned there is detached first so that it stops running now. */
export function removePin(path: string): void {
  const fd = openPinned(path);
  if (fd === null) return;
  try {
    if (pinnedKind(fd) === 'link') retireLink(fd);
  } finally {
    closeFd(fd);
  }
  unlinkSync(path);
}

/** Anything in dir that is not ours by name is an interrupted run's leftover: detach and unlink. */
export function sweepStrays(dir: string, ours: Set<string>, notes: string[]): void {
  for (const name of readdirSync(dir)) {
    if (ours.has(name)) continue;
    removePin(join(dir, name));
    notes.push(`removed ${name}, left by an interrupted run`);
  }
}
