// Naming the listener of every event: pid and comm from the kernel when it saw the listen() call,
// else from /proc (listeners opened before tcplens, in any namespace), and the cgroup from the
// socket's cgroup id. Events leave in the order they came; one whose listener is not in the
// indexes yet waits for the next refresh of them (async, never on the ring reader's path), and
// goes out as it is after that refresh if it is still unknown (its process may be gone).
import { CgroupNames } from '../../kernel/cgroup.js';
import { ListenerIndex } from './listeners.js';
import type { AcceptRecord, ListenerKey } from './accept.js';

/** Refreshes of the indexes start at most this often while names are missing. */
const MIN_REFRESH_MS = 1000;
/** A listener still unknown after a refresh is not waited for again for this long. */
const UNKNOWN_FOR_MS = 10_000;

export interface Listener { netns: number; port: number; pid: number; comm: string; cgroup: string | null }

interface Waiting { record: AcceptRecord; key: ListenerKey; since: number }

export class ListenerNames {
  private readonly procs = new ListenerIndex();
  private readonly cgroups = new CgroupNames();
  private readonly queue: Waiting[] = [];
  private readonly unknown = new Map<string, number>();
  private refreshing: Promise<void> | null = null;
  private lastRefresh = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deliver: (r: AcceptRecord) => void) {}

  /** Build the indexes now (events that arrive meanwhile wait for it). */
  start(): void {
    void this.refresh();
  }

  push(record: AcceptRecord, key: ListenerKey): void {
    if (this.queue.length === 0 && this.name(record, key, false)) {
      this.deliver(record);
      return;
    }
    this.queue.push({ record, key, since: Date.now() });
    this.schedule();
  }

  /** Everything waiting goes out, named as well as the next refresh allows (used at stop). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.queue.length) await Promise.race([this.refreshing ?? this.refresh(), new Promise((r) => setTimeout(r, 3000).unref())]);
    this.drain(true);
  }

  /** Every listener the /proc index knows, once its first scan is done. */
  async listeners(): Promise<Listener[]> {
    await (this.refreshing ?? Promise.resolve());
    return this.procs.all();
  }

  /** Fill pid, comm and cgroup; true when nothing is missing (or nothing more can be found). */
  private name(r: AcceptRecord, k: ListenerKey, final: boolean): boolean {
    const p = r.pid === null ? this.procs.lookup(k.netnsIno, k.port) : null;
    if (p) {
      r.pid = p.pid;
      r.comm = p.comm;
    }
    const cg = this.cgroups.lookup(k.cgroupId);
    r.cgroup = cg !== null ? cg || '/' : p?.cgroup ?? null;
    if (r.pid !== null && r.cgroup !== null) return true;
    const id = `${k.netnsIno}:${k.port}:${k.cgroupId}`;
    const given = this.unknown.get(id);
    if (final || (given !== undefined && Date.now() - given < UNKNOWN_FOR_MS)) return true;
    return false;
  }

  private schedule(): void {
    if (this.timer || this.refreshing) return;
    const wait = Math.max(0, this.lastRefresh + MIN_REFRESH_MS - Date.now());
    this.timer = setTimeout(() => { this.timer = null; void this.refresh(); }, wait);
    this.timer.unref();
  }

  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      const from = Date.now();
      try {
        await Promise.all([this.procs.refresh(), this.cgroups.refresh()]);
      } catch { /* /proc or cgroupfs went away under us: names stay unknown */ }
      this.lastRefresh = from;
      this.refreshing = null;
      this.drain(false, from);
    })();
    return this.refreshing;
  }

  /** Deliver from the head of the queue while records are named, or have waited for a refresh
   * that started after they came (or everything, at the end). */
  private drain(all: boolean, refreshFrom = -Infinity): void {
    while (this.queue.length) {
      const w = this.queue[0];
      const waitedEnough = all || refreshFrom >= w.since;
      if (!this.name(w.record, w.key, waitedEnough)) break;
      if (waitedEnough && (w.record.pid === null || w.record.cgroup === null)) {
        this.unknown.set(`${w.key.netnsIno}:${w.key.port}:${w.key.cgroupId}`, Date.now());
      }
      this.queue.shift();
      this.deliver(w.record);
    }
    if (this.queue.length) this.schedule();
  }
}
