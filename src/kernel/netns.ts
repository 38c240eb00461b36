// Network namespaces from the kernel layer's side: run a synchronous callback with this thread
// inside another namespace (netlink, BPF iterators over a namespace's sockets, sysctls and socket
// calls all act on the calling thread's namespace), and find a namespace again by its inode.
import { readdirSync, readlinkSync } from 'node:fs';
import { c, errno, strerror, O_RDONLY, O_CLOEXEC } from './libbpf.js';
import { TcplensError } from '../errors.js';

const CLONE_NEWNET = 0x40000000;

/** Call fn with this thread inside the network namespace at path (/run/netns/X, /proc/PID/ns/net); always come back. */
export function withNetnsAt<T>(path: string, fn: () => T): T {
  const home = c.open('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC) as number;
  if (home < 0) throw new TcplensError('TCPLENS_ERR_SYSCALL', `cannot open this thread's netns: ${strerror(errno())}`, 'needs /proc');
  const target = c.open(path, O_RDONLY | O_CLOEXEC) as number;
  try {
    if (target < 0) throw new TcplensError('TCPLENS_ERR_NO_NETNS', `network namespace ${path} does not exist`, 'check the name, path or pid');
    if ((c.setns(target, CLONE_NEWNET) as number) < 0) {
      throw new TcplensError('TCPLENS_ERR_SYSCALL', `cannot enter netns ${path}: ${strerror(errno())}`, 'needs root');
    }
    try {
      return fn();
    } finally {
      if ((c.setns(home, CLONE_NEWNET) as number) < 0) {
        // Staying in another namespace would silently misdirect everything after: stop here.
        process.stderr.write(`tcplens: cannot return to the original network namespace: ${strerror(errno())}\n`);
        process.exit(70);
      }
    }
  } finally {
    if (target >= 0) c.close(target);
    c.close(home);
  }
}

/** The inode number of a namespace link ("net:[4026531840]"), or null. */
export function netnsInode(path: string): number | null {
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync(path));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** A path that opens the network namespace with this inode: a hinted pid's first, else any process's. */
export function netnsPathByInode(ino: number, pidHints: number[] = []): string | null {
  for (const pid of [...pidHints, 'self']) {
    const p = `/proc/${pid}/ns/net`;
    if (netnsInode(p) === ino) return p;
  }
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = `/proc/${name}/ns/net`;
    if (netnsInode(p) === ino) return p;
  }
  return null;
}
