// Network namespaces from the kernel layer's side: run a synchronous callback with this thread
// inside another namespace (netlink, BPF iterators over a namespace's sockets, sysctls and socket
// calls all act on the calling thread's namespace), and find a namespace again by its inode.
import { readdirSync, readlinkSync, statSync, statfsSync } from 'node:fs';
import { c, errno, strerror, O_RDONLY, O_CLOEXEC } from './libbpf.js';
import { TcplensError } from '../errors.js';

const CLONE_NEWNET = 0x40000000;
/** statfs(2) f_type of the namespace filesystem (NSFS_MAGIC in linux/magic.h). */
const NSFS_MAGIC = 0x6e736673;

/** A network namespace as the user named it (an `ip netns` name, a path, or a pid), where it
 * opens, and its inode: the identity that tells it from a namespace later found at the same path. */
export interface NetnsRef { name: string; path: string; inode: number }

/** NAME (ip netns: /run/netns/NAME), a pid (/proc/PID/ns/net) or a path, as given. */
export function netnsPathOf(spec: string): string {
  if (/^\d+$/.test(spec)) return `/proc/${spec}/ns/net`;
  if (spec.includes('/')) return spec;
  if (!/^[A-Za-z0-9_.-]+$/.test(spec)) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--netns ${spec}: not a namespace name, path or pid`, 'e.g. --netns blue, --netns /proc/1234/ns/net or --netns 1234');
  }
  return `/run/netns/${spec}`;
}

/** The inode of the namespace mounted or linked at path, or null when none is there (now). */
export function netnsInodeAt(path: string): number | null {
  try {
    // A name whose namespace was deleted can leave a plain file behind: only nsfs counts.
    if ((Number(statfsSync(path).type) >>> 0) !== NSFS_MAGIC) return null;
    return statSync(path).ino;
  } catch {
    return null;
  }
}

/** Resolve a --netns argument; a namespace that is not there is TCPLENS_ERR_NO_NETNS. */
export function resolveNetns(spec: string): NetnsRef {
  const path = netnsPathOf(spec);
  const inode = netnsInodeAt(path);
  if (inode === null) {
    throw new TcplensError('TCPLENS_ERR_NO_NETNS', `network namespace ${spec} does not exist${path !== spec ? ` (${path})` : ''}`,
      'list them with: ip netns list (or give /proc/PID/ns/net, or a pid)');
  }
  return { name: spec, path, inode };
}

/** Several --netns arguments; the same namespace twice (by name and by pid, say) would capture every packet twice. */
export function resolveNetnsList(specs: string[]): NetnsRef[] {
  const refs: NetnsRef[] = [];
  for (const spec of specs) {
    const ref = resolveNetns(spec);
    const twin = refs.find((r) => r.inode === ref.inode);
    if (twin) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--netns ${twin.name} and --netns ${spec} are the same namespace (inode ${ref.inode})`, 'give each namespace once');
    refs.push(ref);
  }
  return refs;
}

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
