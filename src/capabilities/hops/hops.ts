// The hops probe engine: one loaded socket filter (hops.bpf.c) shared by every probe; per probe
// one non-blocking TCP socket with the filter attached before connect(), its completion seen by
// the shared connect waiter, then the first reply's TTL taken out of the map by socket cookie.
// What a probe leaves behind: nothing (socket closed with a RST, map entry deleted, timer gone).
import { BpfObject } from '../../kernel/bpf-object.js';
import type { BpfMap } from '../../kernel/bpf-map.js';
import { readCounters } from '../../kernel/counters.js';
import { strerror } from '../../kernel/libbpf.js';
import { objectPath } from '../../kernel/paths.js';
import {
  attachSocketFilter, closeFd, EINPROGRESS, openTcpSocket, resetOnClose, socketCookie, socketError, startConnect, whenConnected,
} from '../../kernel/tcp-connect.js';
import { isTcplensError, type ErrorCode } from '../../errors.js';
import type { Family } from '../../net/addr.js';
import { hopDistance, initialTtl } from '../../net/ttl.js';

export const HOPS_OBJECT = objectPath('src/capabilities/hops/hops');

export type ProbeStatus = 'open' | 'refused' | 'timeout' | 'unreachable' | 'error';

export interface ProbeAddress { family: Family; bytes: Uint8Array; port: number }

export interface ProbeOutcome {
  status: ProbeStatus;
  /** TTL / hop limit of the first reply; null when none came */
  ttl: number | null;
  initialTtl: number | null;
  hops: number | null;
  /** connect() to the first reply, timed in the kernel; for a local error, to the error */
  connectMs: number | null;
  error: ErrorCode | null;
  /** the system's words for an error (strerror), for people */
  reason: string | null;
}

export type HopsCounterName = 'lost' | 'packets' | 'replies' | 'later' | 'other' | 'not_ip';

export interface ProbeOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Run the socket() call inside this wrapper (tests: a lab namespace; the socket keeps it). */
  inNetns?: <T>(fn: () => T) => T;
}

const ECONNREFUSED = 111, EHOSTUNREACH = 113, ENETUNREACH = 101, ETIMEDOUT = 110, EINVAL = 22, EACCES = 13, EPERM = 1;

/** What a connect's errno says about the target. EINVAL and EACCES come from local routes that
 * discard (blackhole) or forbid (prohibit) the destination: as unreachable as an ICMP error. */
export function classifyErrno(err: number): { status: ProbeStatus; error: ErrorCode | null } {
  switch (err) {
    case 0: return { status: 'open', error: null };
    case ECONNREFUSED: return { status: 'refused', error: 'TCPLENS_ERR_REFUSED' };
    case ETIMEDOUT: return { status: 'timeout', error: 'TCPLENS_ERR_TIMEOUT' };
    case EHOSTUNREACH: case ENETUNREACH: case EINVAL: case EACCES: case EPERM:
      return { status: 'unreachable', error: 'TCPLENS_ERR_UNREACHABLE' };
    default: return { status: 'error', error: 'TCPLENS_ERR_SYSCALL' };
  }
}

/** The probe's result from its status and the filter's record (or none). */
export function outcome(status: ProbeStatus, error: ErrorCode | null, ttl: number | null, connectMs: number | null, reason: string | null = null): ProbeOutcome {
  return {
    status, ttl, error, reason, connectMs,
    initialTtl: ttl === null ? null : initialTtl(ttl),
    hops: ttl === null ? null : hopDistance(ttl),
  };
}

type Finish = (status: ProbeStatus, error: ErrorCode | null, reason: string | null) => void;

export class HopsProber {
  private readonly live = new Set<Finish>();
  /** Signals already watched: one listener per signal, not one per probe. */
  private readonly signals = new WeakSet<AbortSignal>();
  private closed = false;
  /** Reused for every map read (one probe's read is synchronous). */
  private readonly key = Buffer.alloc(8);
  private readonly value: Buffer;

  private constructor(private readonly obj: BpfObject, private readonly replies: BpfMap, private readonly progFd: number,
    private readonly layout: { size: number; replyNs: number; ttl: number; later: number }) {
    this.value = Buffer.alloc(replies.valueSize);
  }

  /** Load the filter; `inFlight` sizes the replies map (one entry per probe in flight). */
  static open(inFlight = 4096): HopsProber {
    const obj = BpfObject.open(HOPS_OBJECT);
    try {
      obj.setMaxEntries('replies', Math.max(1024, inFlight * 2));
      obj.load();
      const s = obj.struct('hops_reply');
      const layout = { size: s.size, replyNs: s.offset('reply_ns', 8), ttl: s.offset('ttl', 1), later: s.offset('later', 4) };
      return new HopsProber(obj, obj.map('replies'), obj.program('first_reply').fd, layout);
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  get programFd(): number {
    return this.progFd;
  }

  /** The filter's record of a socket, taken out of the map (or just read, to watch it). */
  reply(cookie: bigint, take = true): { ttl: number; replyNs: bigint; later: number } | null {
    this.key.writeBigUInt64LE(cookie);
    const v = take ? (this.replies.lookupAndDeleteInto(this.key, this.value) ? this.value : null) : this.replies.lookup(this.key);
    if (!v) return null;
    return { ttl: v.readUInt8(this.layout.ttl), replyNs: v.readBigUInt64LE(this.layout.replyNs), later: v.readUInt32LE(this.layout.later) };
  }

  counters(): Record<HopsCounterName, number> {
    return readCounters<HopsCounterName>(this.obj, 'hops_counters');
  }

  /** Probes whose sockets are open right now. */
  get inFlight(): number {
    return this.live.size;
  }

  /** One probe of one address; never throws for the target's sake (errors are outcomes). */
  probe(addr: ProbeAddress, opts: ProbeOptions): Promise<ProbeOutcome> {
    if (this.closed || opts.signal?.aborted) return Promise.resolve(outcome('error', 'TCPLENS_ERR_INTERRUPTED', null, null, 'stopped'));
    let fd = -1;
    let cookie = 0n;
    try {
      fd = (opts.inNetns ?? ((f) => f()))(() => openTcpSocket(addr.family));
      attachSocketFilter(fd, this.progFd);
      cookie = socketCookie(fd);
      resetOnClose(fd);
    } catch (e) {
      if (fd >= 0) closeFd(fd);
      const code = isTcplensError(e) ? e.code : 'TCPLENS_ERR_SYSCALL';
      return Promise.resolve(outcome('error', code, null, null, (e as Error).message));
    }
    return new Promise((resolve) => {
      let cancelWatch: (() => void) | null = null;
      let timer: NodeJS.Timeout | null = null;
      const start = process.hrtime.bigint();
      // Ends the probe exactly once, whichever comes first: completion, timeout, stop, close().
      const finish: Finish = (status, error, reason) => {
        if (!this.live.delete(finish)) return;
        if (timer) clearTimeout(timer);
        cancelWatch?.();
        const end = process.hrtime.bigint();
        closeFd(fd); // closed before the map is read: no reply can be recorded after we look
        fd = -1;
        const rec = this.reply(cookie);
        // Both clocks are CLOCK_MONOTONIC (bpf_ktime_get_ns, uv_hrtime): the kernel's stamp is when
        // the reply reached the socket, not when this thread got round to it.
        const ms = rec ? Number(rec.replyNs - start) / 1e6 : status === 'unreachable' ? Number(end - start) / 1e6 : null;
        resolve(outcome(status, error, rec ? rec.ttl : null, ms === null ? null : Math.max(0, Math.round(ms * 1000) / 1000), reason));
      };
      this.live.add(finish);
      const rc = startConnect(fd, addr.family, addr.bytes, addr.port);
      if (rc !== EINPROGRESS) {
        const { status, error } = classifyErrno(rc);
        finish(status, error, rc ? strerror(rc) : null);
        return;
      }
      this.watchSignal(opts.signal);
      timer = setTimeout(() => finish('timeout', 'TCPLENS_ERR_TIMEOUT', `no reply within ${opts.timeoutMs} ms`), opts.timeoutMs);
      try {
        cancelWatch = whenConnected(fd, () => {
          cancelWatch = null;
          const err = socketError(fd);
          const { status, error } = classifyErrno(err);
          finish(status, error, err ? strerror(err) : null);
        });
      } catch (e) {
        finish('error', isTcplensError(e) ? e.code : 'TCPLENS_ERR_SYSCALL', (e as Error).message);
      }
    });
  }

  /** A stop request ends every probe in flight as interrupted. */
  private watchSignal(signal: AbortSignal | undefined): void {
    if (!signal || this.signals.has(signal)) return;
    this.signals.add(signal);
    signal.addEventListener('abort', () => this.interruptAll(), { once: true });
  }

  private interruptAll(): void {
    for (const end of [...this.live]) end('error', 'TCPLENS_ERR_INTERRUPTED', 'stopped');
  }

  /** End every probe in flight (as interrupted), then unload the filter. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.interruptAll();
    this.obj.close();
  }
}
