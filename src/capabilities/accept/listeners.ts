// Who listens on a port, for connections to listeners that were opened before tcplens attached
// (the kernel side records listen() calls it sees; older listeners are found here, in /proc, the
// way `ss -p` does). Only for tcplens's own network namespace: /proc/net shows no other.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { c } from '../../kernel/libbpf.js';

const SOL_SOCKET = 1, SO_NETNS_COOKIE = 71, AF_INET = 2, SOCK_DGRAM = 2;

export function ownNetnsCookie(): bigint {
  const fd = c.socket(AF_INET, SOCK_DGRAM, 0) as number;
  if (fd < 0) return 0n;
  try {
    const buf = Buffer.alloc(8);
    const len = [8];
    if ((c.getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, buf, len) as number) < 0) return 0n;
    return buf.readBigUInt64LE(0);
  } finally {
    c.close(fd);
  }
}

export interface ListenerProcess { pid: number; comm: string }

/** port -> socket inodes in LISTEN state, from /proc/net/tcp and tcp6. */
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

export class ProcListeners {
  private byPort = new Map<number, ListenerProcess>();
  private scannedAt = 0;

  constructor(private readonly minRescanMs = 2000) {}

  lookup(port: number): ListenerProcess | null {
    const hit = this.byPort.get(port);
    if (hit) return hit;
    if (Date.now() - this.scannedAt < this.minRescanMs) return null;
    this.scan();
    return this.byPort.get(port) ?? null;
  }

  private scan(): void {
    this.scannedAt = Date.now();
    const read = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return ''; } };
    const inodes = listeningInodes([read('/proc/net/tcp'), read('/proc/net/tcp6')]);
    const inodeToPort = new Map<string, number>();
    for (const [port, set] of inodes) for (const i of set) inodeToPort.set(i, port);
    const found = new Map<number, ListenerProcess>();
    for (const pidText of readdirSync('/proc')) {
      if (!/^\d+$/.test(pidText) || inodeToPort.size === found.size) continue;
      let fds: string[];
      try { fds = readdirSync(`/proc/${pidText}/fd`); } catch { continue; }
      for (const fd of fds) {
        let target: string;
        try { target = readlinkSync(`/proc/${pidText}/fd/${fd}`); } catch { continue; }
        const m = /^socket:\[(\d+)\]$/.exec(target);
        const port = m ? inodeToPort.get(m[1]) : undefined;
        if (port !== undefined && !found.has(port)) {
          found.set(port, { pid: Number(pidText), comm: read(`/proc/${pidText}/comm`).trim() });
        }
      }
    }
    this.byPort = found;
  }
}
