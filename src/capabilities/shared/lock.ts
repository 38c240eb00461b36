// One enable/disable at a time: a lock file created with O_EXCL that names its holder by pid AND
// process start time, so a holder that died (or a pid the system has since reused) is recognised
// as stale and the lock taken over instead of blocking forever.
import { mkdirSync, openSync, closeSync, writeSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { TcplensError, type ErrorCode } from '../../errors.js';

export interface LockHolder { pid: number; start: string }

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or null if pid is gone. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function readHolder(path: string): LockHolder | null {
  try {
    const [pid, start] = readFileSync(path, 'utf8').trim().split(/\s+/);
    return { pid: Number(pid), start: start ?? '' };
  } catch {
    return null;
  }
}

function alive(h: LockHolder): boolean {
  return Number.isInteger(h.pid) && h.pid > 0 && processStart(h.pid) === h.start;
}

export interface Lock { path: string; staleTakenFrom: number | null; release(): void }

/** Take the lock at path or throw `code` (the capability's state error) naming who holds it. */
export function acquireLock(path: string, what: string, code: ErrorCode = 'TCPLENS_ERR_TOA_STATE'): Lock {
  const me: LockHolder = { pid: process.pid, start: processStart(process.pid) ?? '' };
  let staleTakenFrom: number | null = null;
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new TcplensError(code, `cannot create the lock ${path}: ${(e as Error).message}`, 'run as root; /run must be writable');
      }
      const h = readHolder(path);
      if (h && alive(h)) {
        throw new TcplensError(code, `another ${what} is in progress (pid ${h.pid} holds ${path})`,
          `wait for it to finish; if pid ${h.pid} is not tcplens, remove ${path}`);
      }
      // Its holder is gone: the lock is stale. (Two takers racing here is possible only if both
      // found the same dead holder at the same instant; the window is microseconds wide.)
      staleTakenFrom = h?.pid ?? null;
      try { unlinkSync(path); } catch { /* someone else took it over */ }
      continue;
    }
    writeSync(fd, `${me.pid} ${me.start}\n`);
    closeSync(fd);
    return {
      path, staleTakenFrom,
      release: () => {
        const h = readHolder(path);
        if (h && h.pid === me.pid && h.start === me.start) {
          try { unlinkSync(path); } catch { /* already gone */ }
        }
      },
    };
  }
  throw new TcplensError(code, `cannot take the lock ${path}: it keeps coming back`, 'another tcplens is starting at the same moment; retry');
}

export function withLock<T>(path: string, what: string, fn: (lock: Lock) => T, code?: ErrorCode): T {
  const lock = acquireLock(path, what, code);
  try {
    return fn(lock);
  } finally {
    lock.release();
  }
}

/** pid of the live holder of the lock at path, or null. */
export function lockHolder(path: string): number | null {
  const h = readHolder(path);
  return h && alive(h) ? h.pid : null;
}
