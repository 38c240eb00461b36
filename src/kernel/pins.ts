// Pinned BPF objects on a bpf filesystem: what a capability that outlives its command (toa, accel)
// needs to find, inspect, replace and remove what an earlier run left behind. Only fds and paths
// here; which pins mean what is the capability's business.
import { mkdirSync, readFileSync, readdirSync, statSync, statfsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { bpf, c, errno, strerror } from './libbpf.js';
import { TcplensError } from '../errors.js';
import { BpfMap } from './bpf-map.js';
import { kernelBtf } from './btf.js';

const ENOENT = 2;
export const BPFFS_ROOT = '/sys/fs/bpf';

function syscallError(what: string, err: number, hint = 'needs root and a bpf filesystem'): TcplensError {
  return new TcplensError('TCPLENS_ERR_SYSCALL', `${what}: ${strerror(err)}`, hint);
}

/** An fd for a pinned object, or null when nothing is pinned there. */
export function openPinned(path: string): number | null {
  const fd = bpf.obj_get(path) as number;
  if (fd >= 0) return fd;
  const err = -fd > 0 && -fd < 4096 ? -fd : errno();
  if (err === ENOENT) return null;
  throw syscallError(`cannot open pinned ${path}`, err);
}

export function closeFd(fd: number | null | undefined): void {
  if (fd !== null && fd !== undefined && fd >= 0) c.close(fd);
}

export function pinFd(fd: number, path: string): void {
  const rc = bpf.obj_pin(fd, path) as number;
  if (rc < 0) throw syscallError(`cannot pin at ${path}`, -rc);
}

export type PinnedKind = 'link' | 'map' | 'prog' | 'unknown';

/** What an fd refers to; the kernel says so in its fdinfo. */
export function pinnedKind(fd: number): PinnedKind {
  let text = '';
  try { text = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'); } catch { return 'unknown'; }
  if (/^link_type:/m.test(text)) return 'link';
  if (/^map_type:/m.test(text)) return 'map';
  if (/^prog_type:/m.test(text)) return 'prog';
  return 'unknown';
}

/** One of the kernel's bpf_*_info structs for fd, read into a buffer the size this kernel has it. */
function info(fd: number, struct: string, what: string): { buf: Buffer; at: (path: string[]) => number } {
  const btf = kernelBtf();
  const size = btf.struct(struct).size;
  const buf = Buffer.alloc(size);
  const len = [size];
  if ((bpf.obj_get_info_by_fd(fd, buf, len) as number) < 0) throw syscallError(`cannot read info of ${what}`, errno());
  return { buf, at: (path) => btf.offsetOf(struct, path).offset };
}

export interface LinkInfo { id: number; progId: number; type: number; cgroupId: bigint; attachType: number }

/** struct bpf_link_info; for cgroup links the union holds cgroup.cgroup_id and cgroup.attach_type. */
export function linkInfo(fd: number): LinkInfo {
  const { buf, at } = info(fd, 'bpf_link_info', 'link');
  return { type: buf.readUInt32LE(at(['type'])), id: buf.readUInt32LE(at(['id'])), progId: buf.readUInt32LE(at(['prog_id'])),
    cgroupId: buf.readBigUInt64LE(at(['', 'cgroup', 'cgroup_id'])), attachType: buf.readUInt32LE(at(['', 'cgroup', 'attach_type'])) };
}

export interface MapInfo { type: number; id: number; keySize: number; valueSize: number; maxEntries: number; name: string }

export function mapInfo(fd: number): MapInfo {
  const { buf, at } = info(fd, 'bpf_map_info', 'map');
  const name = at(['name']);
  return { type: buf.readUInt32LE(at(['type'])), id: buf.readUInt32LE(at(['id'])), keySize: buf.readUInt32LE(at(['key_size'])),
    valueSize: buf.readUInt32LE(at(['value_size'])), maxEntries: buf.readUInt32LE(at(['max_entries'])), name: cString(buf.subarray(name, name + 16)) };
}

export interface ProgInfo { id: number; name: string; tag: string; runCnt: number; runTimeNs: number; verifiedInsns: number | null }

/** struct bpf_prog_info: run_time_ns and run_cnt count while the kernel's BPF statistics are on;
 * verified_insns (the verifier's "processed N insns") is there since Linux 5.16, null before. */
export function progInfo(fd: number): ProgInfo {
  const { buf, at } = info(fd, 'bpf_prog_info', 'program');
  const tag = at(['tag']), name = at(['name']);
  const verified = kernelBtf().struct('bpf_prog_info').fields.has('verified_insns') ? buf.readUInt32LE(at(['verified_insns'])) : null;
  return { id: buf.readUInt32LE(at(['id'])), tag: buf.subarray(tag, tag + 8).toString('hex'), name: cString(buf.subarray(name, name + 16)),
    runTimeNs: Number(buf.readBigUInt64LE(at(['run_time_ns']))), runCnt: Number(buf.readBigUInt64LE(at(['run_cnt']))), verifiedInsns: verified };
}

export function progFdById(id: number): number {
  const fd = bpf.prog_get_fd_by_id(id) as number;
  if (fd < 0) throw syscallError(`cannot open program id ${id}`, -fd);
  return fd;
}

/** A pinned map as a BpfMap (sizes from the kernel); the caller closes map.fd. */
export function pinnedMap(fd: number): BpfMap {
  const i = mapInfo(fd);
  return new BpfMap(i.name, fd, i.keySize, i.valueSize, i.maxEntries, i.type);
}

/** Swap the program behind a link in one step (BPF_LINK_UPDATE): no moment without either. */
export function updateLink(linkFd: number, progFd: number): void {
  const rc = bpf.link_update(linkFd, progFd, null) as number;
  if (rc < 0) throw syscallError('cannot update a pinned link', -rc, 'the kernel refused to swap the program (needs Linux >= 5.7 for cgroup links)');
}

/** A BPF link from prog to an fd target (BPF_LINK_CREATE), e.g. an sk_msg program on a SOCKHASH
 * (BPF_SK_MSG_VERDICT, a sockmap link since Linux 6.10). Returns the link's fd. */
export function createLink(progFd: number, targetFd: number, attachType: number, what: string): number {
  const fd = bpf.link_create(progFd, targetFd, attachType, null) as number;
  if (fd < 0) {
    const err = -fd;
    throw new TcplensError(err === 22 || err === 95 || err === 524 ? 'TCPLENS_ERR_UNSUPPORTED' : 'TCPLENS_ERR_ATTACH', `cannot link ${what}: ${strerror(err)}`,
      'sk_msg links on a SOCKHASH need Linux >= 6.10');
  }
  return fd;
}

/** Detach a link now (BPF_LINK_DETACH), whoever else still holds it; its pin becomes inert. */
export function detachLink(linkFd: number): void {
  const rc = bpf.link_detach(linkFd) as number;
  if (rc < 0) throw syscallError('cannot detach a pinned link', -rc);
}

/** statfs(2) f_type of a bpf filesystem (BPF_FS_MAGIC in linux/magic.h). */
export const BPF_FS_MAGIC = 0xcafe4a11;

/** The filesystem type (statfs magic) of path, or null when path does not exist. */
function fsType(path: string): number | null {
  try {
    return Number(statfsSync(path).type) >>> 0;
  } catch {
    return null;
  }
}

/**
 * A directory for pins: make sure a bpf filesystem is mounted at /sys/fs/bpf (mounting one when
 * that is a plain sysfs directory, as on a fresh machine where systemd did not), then create dir
 * under it. Every path that pins comes through here: mkdir -p on sysfs never returns (Node's
 * recursive mkdir retries the ENOENT that sysfs answers forever), so nothing may mkdir under
 * /sys/fs/bpf before this check. Returns a note for the user when it mounted.
 */
export function bpffsDir(dir: string): string | null {
  if (dir !== BPFFS_ROOT && !dir.startsWith(`${BPFFS_ROOT}/`)) {
    throw new TcplensError('TCPLENS_ERR_NO_BPFFS', `${dir} is not under ${BPFFS_ROOT}`, `pin under ${BPFFS_ROOT}`);
  }
  let note: string | null = null;
  if (fsType(BPFFS_ROOT) !== BPF_FS_MAGIC) {
    try {
      execFileSync('mount', ['-t', 'bpf', 'bpf', BPFFS_ROOT], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
    } catch (e) {
      throw new TcplensError('TCPLENS_ERR_NO_BPFFS', `no bpf filesystem at ${BPFFS_ROOT}, and mounting one failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`,
        `mount it as root: mount -t bpf bpf ${BPFFS_ROOT}`);
    }
    if (fsType(BPFFS_ROOT) !== BPF_FS_MAGIC) {
      throw new TcplensError('TCPLENS_ERR_NO_BPFFS', `${BPFFS_ROOT} is still not a bpf filesystem after mounting one`, `check: stat -f ${BPFFS_ROOT}`);
    }
    note = `mounted a bpf filesystem at ${BPFFS_ROOT} (none was mounted)`;
  }
  // One level at a time: each mkdir is checked to land on the bpf filesystem.
  let at = BPFFS_ROOT;
  for (const part of dir.slice(BPFFS_ROOT.length).split('/').filter(Boolean)) {
    at = `${at}/${part}`;
    try {
      mkdirSync(at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new TcplensError('TCPLENS_ERR_NO_BPFFS', `cannot create ${at}: ${(e as Error).message}`, 'needs root and a bpf filesystem');
      }
    }
  }
  return note;
}

/** True when path exists on a bpf filesystem (read-only callers: status, disable; they never mount). */
export function onBpffs(path: string): boolean {
  return fsType(path) === BPF_FS_MAGIC;
}

/** The path under the cgroup2 mount `root` whose cgroup id (its inode) is id, or null. */
export function cgroupPathById(root: string, id: bigint, limit = 100_000): string | null {
  const queue = [root];
  for (let seen = 0; queue.length && seen < limit; seen++) {
    const dir = queue.shift()!;
    try {
      if (statSync(dir, { bigint: true }).ino === id) return dir;
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) queue.push(`${dir}/${e.name}`);
    } catch { /* removed while we walked */ }
  }
  return null;
}

export function cgroupId(path: string): bigint {
  return statSync(path, { bigint: true }).ino;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}
