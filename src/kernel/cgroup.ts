// cgroup v2: where it is mounted, opening one for attach, and throwaway cgroups for tests.
import { readFileSync, existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readdir, stat } from 'node:fs/promises';
import { c, errno, strerror, O_RDONLY, O_DIRECTORY, O_CLOEXEC } from './libbpf.js';
import { TcplensError } from '../errors.js';

/** The cgroup2 mount point (hybrid hosts mount it at /sys/fs/cgroup/unified). */
export function cgroup2Mount(): string {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  for (const line of mounts) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre.split(' ')[4];
  }
  throw new TcplensError('TCPLENS_ERR_NO_CGROUP', 'no cgroup v2 filesystem is mounted',
    'mount one: mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified');
}

/** A cgroup path as the user gave it: absolute, or relative to the cgroup2 mount. */
export function resolveCgroup(path?: string): string {
  const root = cgroup2Mount();
  if (!path) return root;
  const full = path.startsWith('/') && path.startsWith(root) ? path : join(root, path);
  if (!existsSync(full) || !existsSync(join(full, 'cgroup.procs'))) {
    throw new TcplensError('TCPLENS_ERR_NO_CGROUP', `cgroup ${path} does not exist (looked for ${full})`,
      `give a cgroup v2 directory under ${root}, e.g. --cgroup system.slice/nginx.service`);
  }
  return full;
}

export function openCgroup(path: string): number {
  const fd = c.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) as number;
  if (fd < 0) {
    throw new TcplensError('TCPLENS_ERR_NO_CGROUP', `cannot open cgroup ${path}: ${strerror(errno())}`,
      'the path must be a cgroup v2 directory; see `mount | grep cgroup2`');
  }
  return fd;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * A fresh, throwaway cgroup under the cgroup2 root. remove() ends every process still in it
 * (cgroup.kill) and waits for them to be gone: rmdir fails while a killed process is still
 * exiting, which would otherwise leave the directory behind.
 */
export function createCgroup(name: string): { path: string; join(pid: number): void; remove(): void } {
  const path = join(cgroup2Mount(), name);
  mkdirSync(path, { recursive: true });
  return {
    path,
    join: (pid: number) => writeFileSync(join(path, 'cgroup.procs'), `${pid}\n`),
    remove: () => {
      if (!existsSync(path)) return;
      try { writeFileSync(join(path, 'cgroup.kill'), '1'); } catch { /* older kernels: processes are the caller's */ }
      for (let i = 0; i < 100; i++) {
        try {
          rmdirSync(path);
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
          sleepSync(20);
        }
      }
    },
  };
}

/**
 * cgroup id (the kernel's kernfs id: the inode of the cgroup's directory on cgroup2) -> path
 * relative to the cgroup2 mount, e.g. "system.slice/nginx.service". Built by an async walk of the
 * tree, off any hot path; callers ask for a new walk when a name is missing (cgroups come and go).
 */
export class CgroupNames {
  private byId = new Map<bigint, string>();
  private walking: Promise<void> | null = null;

  constructor(private readonly root = cgroup2Mount(), private readonly limit = 200_000) {}

  lookup(id: bigint): string | null {
    return this.byId.get(id) ?? null;
  }

  refresh(): Promise<void> {
    this.walking ??= this.walk().then((m) => { this.byId = m; }).finally(() => { this.walking = null; });
    return this.walking;
  }

  private async walk(): Promise<Map<bigint, string>> {
    const out = new Map<bigint, string>();
    const queue = [''];
    while (queue.length && out.size < this.limit) {
      const rel = queue.shift()!;
      const dir = rel ? join(this.root, rel) : this.root;
      try {
        out.set((await stat(dir, { bigint: true })).ino, rel);
        for (const e of await readdir(dir, { withFileTypes: true })) if (e.isDirectory()) queue.push(rel ? `${rel}/${e.name}` : e.name);
      } catch { /* removed while we walked */ }
    }
    return out;
  }
}
