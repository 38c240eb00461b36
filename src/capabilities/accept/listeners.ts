// Who listens on a port, for every network namespace on the host, the way `ss -p` finds it:
// each namespace's /proc/<pid>/net/tcp{,6} lists its listening sockets by inode, and the socket
// inodes under /proc/<pid>/fd say which process holds them. The kernel side names the listener
// itself when it saw the listen() call; this covers listeners opened before tcplens started, in
// any container. The index is built with async reads, off the ring reader's path, so a host with
// many processes never stalls event delivery; lookups are synchronous map reads.
import { readFile, readdir, readlink } from 'node:fs/promises';

export interface ListenerProcess { pid: number; comm: string; cgroup: string | null }

/** port -> socket inodes in LISTEN state, from the text of /proc/<pid>/net/tcp and tcp6. */
export function listeningInodes(tables: string[]): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const text of tables) {
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue;
      const port = parseInt(f[1].split(':')[1], 16);
      if (!out.has(port)) out.set(port, new Set());
      out.get(port)!.add(f[9]);
    }
  }
  return out;
}

/** The cgroup v2 path of a process from /proc/<pid>/cgroup ("0::/system.slice/x.service"), without the leading '/'. */
export function cgroupOfProcess(text: string): string | null {
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  return line ? line.slice(3).replace(/^\//, '') : null;
}

const read = (p: string) => readFile(p, 'utf8').catch(() => '');
const key = (netnsIno: number, port: number) => `${netnsIno}:${port}`;

export class ListenerIndex {
  private byKey = new Map<string, ListenerProcess>();
  private scanning: Promise<void> | null = null;

  lookup(netnsIno: number, port: number): ListenerProcess | null {
    return this.byKey.get(key(netnsIno, port)) ?? null;
  }

  all(): { netns: number; port: number; pid: number; comm: string; cgroup: string | null }[] {
    return [...this.byKey].map(([k, v]) => {
      const [netns, port] = k.split(':').map(Number);
      return { netns, port, ...v };
    });
  }

  /** Start a scan unless one is running; resolves when the index reflects the host as of now. */
  refresh(): Promise<void> {
    if (!this.scanning) {
      this.scanning = this.scan().then((found) => { this.byKey = found; }).finally(() => { this.scanning = null; });
    }
    return this.scanning;
  }

  private async scan(): Promise<Map<string, ListenerProcess>> {
    const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
    // One namespace's socket table is read once, through any of its processes.
    const tables = new Map<number, Map<string, number>>(); // netns inode -> socket inode -> port
    const nsOf = new Map<string, number>();
    for (const pid of pids) {
      const link = await readlink(`/proc/${pid}/ns/net`).catch(() => '');
      const ino = Number(/^net:\[(\d+)\]$/.exec(link)?.[1] ?? NaN);
      if (!Number.isFinite(ino)) continue;
      nsOf.set(pid, ino);
      if (tables.has(ino)) continue;
      const inodes = listeningInodes([await read(`/proc/${pid}/net/tcp`), await read(`/proc/${pid}/net/tcp6`)]);
      const byInode = new Map<string, number>();
      for (const [port, set] of inodes) for (const i of set) byInode.set(i, port);
      tables.set(ino, byInode);
    }
    const found = new Map<string, ListenerProcess>();
    for (const pid of pids) {
      const ino = nsOf.get(pid);
      const byInode = ino === undefined ? undefined : tables.get(ino);
      if (!byInode?.size) continue;
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
        const port = m ? byInode.get(m[1]) : undefined;
        if (port === undefined || found.has(key(ino!, port))) continue;
        found.set(key(ino!, port), {
          pid: Number(pid),
          comm: (await read(`/proc/${pid}/comm`)).trim(),
          cgroup: cgroupOfProcess(await read(`/proc/${pid}/cgroup`)),
        });
      }
    }
    return found;
  }
}
