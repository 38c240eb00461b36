// tcplens accept, user side: options -> rodata, the load/attach plan, decoding events (layout read
// from the object's BTF), naming who listens, and the sweeper that reports merge windows as they
// close. Events go out in the order the kernel produced them.
import { BpfObject } from '../../kernel/bpf-object.js';
import { RingBufferReader } from '../../kernel/ring-buffer.js';
import { readCounters } from '../../kernel/counters.js';
import { objectPath } from '../../kernel/paths.js';
import type { StructLayout } from '../../kernel/btf.js';
import type { BpfMap } from '../../kernel/bpf-map.js';
import { formatEndpoint, type Cidr, type Family } from '../../net/addr.js';
import type { ToaDialect } from '../../net/toa.js';
import { hopDistance } from '../../net/ttl.js';
import { toaTablesRodata } from '../shared/toa-tables.js';
import { undoSaveSyn, type SaveSynUndo } from '../shared/save-syn.js';
import { ListenerNames, type Listener } from './who.js';
import { TcplensError } from '../../errors.js';
import { ACCEPTOR_PROGRAMS, acceptObject, acceptorWays, fallbackPlan, requireAcceptKernel, type AcceptPlan } from './attach-plan.js';

export type ToaConflictPolicy = 'reject' | 'first';

export interface AcceptOptions {
  /** cgroup v2 directory whose processes' connections are seen */
  cgroup: string;
  ports: number[];
  family: 0 | 4 | 6;
  mergeWindowNs: bigint;
  /** open merge windows the kernel can hold; beyond, events go out unmerged (merge_full) */
  mergeCapacity: number;
  trusted: Cidr[];
  dialects: ToaDialect[];
  /** two TOAs in one header: believe none (reject), or the first (balancers that write theirs first) */
  toaConflict: ToaConflictPolicy;
  /** keep each SYN (TCP_SAVE_SYN on listeners opened from now on, undone at stop) to read a TOA from it */
  saveSyn: boolean;
  /** read toa.ko's per-socket TOA (worth it only where the module is loaded) */
  readToaKo: boolean;
}

export const DEFAULT_MERGE_CAPACITY = 16384;

export type ToaSource = 'ack' | 'syn' | 'toa.ko';
/** Why a header's TOA could not be used as it was: a broken option, or two TOAs. */
export type MalformedReason = 'bad_option' | 'conflict';

export interface AcceptRecord {
  time: string;
  /** last connection of a merged window (only on a summary) */
  last?: string;
  local: string;
  peer: string;
  /** the real client, when a trusted TOA named one */
  client: string | null;
  toa: { kind: number; len: number; source: ToaSource; claimed: string } | null;
  /** true: the TOA came from a trusted balancer; false: it did not and was ignored; null: no TOA */
  trusted: boolean | null;
  malformed: MalformedReason | null;
  /** connections in this record: 1 for a first sighting, the window's total for a summary */
  count: number;
  /** a merge window closing: the final count of a key whose first connection was reported already */
  summary: boolean;
  /** TTL / hop limit the client's handshake arrived with, and the hops that implies (behind a
   * FULLNAT balancer: the balancer's distance, since it is the balancer's packet that arrives) */
  ttl: number | null;
  hops: number | null;
  /** in-kernel cost per connection, ns */
  kernel_ns: number;
  pid: number | null;
  comm: string | null;
  /** the listening socket's cgroup, relative to the cgroup2 mount ("/" for the root) */
  cgroup: string | null;
  /** network namespace inode (as `ls -l /proc/PID/ns/net` shows it) */
  netns: number;
}

/** The kernel's counters, plus `records`: records handed on (from the ring and from closed windows). */
export type AcceptCounters = Record<'lost' | 'connections' | 'events' | 'merged' | 'merge_full' | 'toa_seen' | 'toa_untrusted' |
  'toa_malformed' | 'toa_conflict' | 'no_toa' | 'filtered' | 'records', number>;

export const MAX_PORTS = 8;
const F_CLIENT = 1, F_TOA = 2, F_UNTRUSTED = 4, F_MALFORMED = 8, F_CONFLICT = 0x10, F_SUMMARY = 0x20;
const SOURCES: Record<number, ToaSource> = { 1: 'ack', 2: 'syn', 3: 'toa.ko' };
/** A window is swept only this long after it closed, so the kernel never counts into an entry we take. */
const SWEEP_GRACE_NS = 200_000_000n;
/** A connection nobody accept()ed this long after it was established goes out named from the listener. */
const PENDING_NS = 2_000_000_000n;

/** Who the kernel says listens (pid 0: it did not see the listen() call), and where to look it up. */
export interface ListenerKey { netnsIno: number; port: number; cgroupId: bigint; pid: number; comm: string }

/** Decodes accept_event records; every offset comes from BTF. */
export class AcceptDecoder {
  private readonly o: Record<string, number>;
  private readonly ep: { addr: number; port: number; family: number };
  private readonly wallMinusMonoMs: number;

  constructor(event: StructLayout, endpoint: StructLayout) {
    this.o = Object.fromEntries(['first_ns', 'last_ns', 'kernel_ns', 'netns', 'cgroup_id'].map((n) => [n, event.offset(n, 8)]));
    for (const n of ['count', 'pid', 'netns_ino']) this.o[n] = event.offset(n, 4);
    for (const n of ['local', 'peer', 'client']) this.o[n] = event.offset(n, endpoint.size);
    for (const n of ['toa_kind', 'toa_len', 'toa_source', 'flags', 'ttl']) this.o[n] = event.offset(n, 1);
    this.o.comm = event.offset('comm', 16);
    this.ep = { addr: endpoint.offset('addr', 16), port: endpoint.offset('port', 2), family: endpoint.offset('family', 1) };
    this.wallMinusMonoMs = Date.now() - Number(process.hrtime.bigint() / 1_000_000n);
  }

  /** The record as the kernel knows it (pid and comm when it saw listen(); cgroup still to name). */
  decode(dv: DataView, at: number): { record: AcceptRecord; listener: ListenerKey } {
    const o = this.o;
    const flags = dv.getUint8(at + o.flags);
    const count = dv.getUint32(at + o.count, true);
    const hasToa = (flags & F_TOA) !== 0;
    const claimed = this.endpoint(dv, at + o.client);
    const pid = dv.getUint32(at + o.pid, true);
    const comm = pid ? this.cString(dv, at + o.comm, 16) : '';
    const netns = dv.getUint32(at + o.netns_ino, true);
    const summary = (flags & F_SUMMARY) !== 0;
    const ttl = dv.getUint8(at + o.ttl) || null;
    const record: AcceptRecord = {
      time: this.wall(dv.getBigUint64(at + o.first_ns, true)),
      local: this.endpoint(dv, at + o.local),
      peer: this.endpoint(dv, at + o.peer),
      client: flags & F_CLIENT ? claimed : null,
      toa: hasToa ? { kind: dv.getUint8(at + o.toa_kind), len: dv.getUint8(at + o.toa_len), source: SOURCES[dv.getUint8(at + o.toa_source)] ?? 'ack', claimed } : null,
      trusted: hasToa ? (flags & F_UNTRUSTED) === 0 : null,
      malformed: flags & F_CONFLICT ? 'conflict' : flags & F_MALFORMED ? 'bad_option' : null,
      count,
      summary,
      ttl,
      hops: ttl === null ? null : hopDistance(ttl),
      kernel_ns: count ? Math.round(Number(dv.getBigUint64(at + o.kernel_ns, true)) / count) : 0,
      pid: pid || null,
      comm: pid ? comm : null,
      cgroup: null,
      netns,
    };
    if (summary) record.last = this.wall(dv.getBigUint64(at + o.last_ns, true));
    return {
      record,
      listener: { netnsIno: netns, port: dv.getUint16(at + o.local + this.ep.port, true), cgroupId: dv.getBigUint64(at + o.cgroup_id, true), pid, comm },
    };
  }

  private wall(monoNs: bigint): string {
    return new Date(this.wallMinusMonoMs + Number(monoNs / 1_000_000n)).toISOString();
  }

  private endpoint(dv: DataView, at: number): string {
    const family = dv.getUint8(at + this.ep.family) as Family;
    const bytes = new Uint8Array(dv.buffer, dv.byteOffset + at + this.ep.addr, 16);
    return formatEndpoint(bytes, family === 6 ? 6 : 4, dv.getUint16(at + this.ep.port, true));
  }

  private cString(dv: DataView, at: number, max: number): string {
    const bytes = new Uint8Array(dv.buffer, dv.byteOffset + at, max);
    const end = bytes.indexOf(0);
    return Buffer.from(bytes.subarray(0, end < 0 ? max : end)).toString('utf8');
  }
}

/** The rodata that carries the options into the kernel. */
export function acceptRodata(obj: BpfObject, opts: AcceptOptions, plan?: AcceptPlan): Record<string, number | bigint | Uint8Array> {
  const ports = new Uint8Array(2 * MAX_PORTS);
  opts.ports.forEach((p, i) => new DataView(ports.buffer).setUint16(2 * i, p, true));
  return {
    ...toaTablesRodata(obj, opts),
    merge_window_ns: opts.mergeWindowNs,
    filter_family: opts.family,
    filter_ports: ports,
    filter_port_count: opts.ports.length,
    save_syn: opts.saveSyn ? 1 : 0,
    read_toako: opts.readToaKo ? 1 : 0,
    conflict_take_first: opts.toaConflict === 'first' ? 1 : 0,
    listener_names: plan?.listenerNames ? 1 : 0,
    acceptor_names: plan?.acceptor ? 1 : 0,
  };
}

export interface AcceptStop { counters: AcceptCounters; saveSyn: SaveSynUndo | null }

export class AcceptTracer {
  private readonly ring: RingBufferReader;
  private readonly decoder: AcceptDecoder;
  private readonly names: ListenerNames;
  private sweepTimer: NodeJS.Timeout | null = null;
  private stopped: Promise<AcceptStop> | null = null;
  private records = 0;
  private readonly merge: BpfMap;
  private readonly pending: BpfMap;
  private readonly firstAt: number;
  private readonly countAt: number;
  private readonly flagsAt: number;

  private constructor(private readonly obj: BpfObject, private readonly opts: AcceptOptions,
    readonly plan: AcceptPlan, onRecord: (r: AcceptRecord) => void) {
    const event = obj.struct('accept_event');
    this.merge = obj.map('merge');
    this.pending = obj.map('pending');
    this.firstAt = event.offset('first_ns', 8);
    this.countAt = event.offset('count', 4);
    this.flagsAt = event.offset('flags', 1);
    this.decoder = new AcceptDecoder(event, obj.struct('tcplens_endpoint'));
    this.names = new ListenerNames((r) => { this.records++; onRecord(r); });
    this.ring = new RingBufferReader(obj.map('events'), (dv, off) => this.hand(dv, off));
  }

  /** Probe, open, configure, load and attach; events flow to onRecord until stop(). The way to the
   * accepting process is chosen by trying each this kernel may allow (plan says which won). */
  static start(opts: AcceptOptions, onRecord: (r: AcceptRecord) => void): AcceptTracer {
    requireAcceptKernel();
    const object = acceptObject();
    const refused: string[] = [];
    for (const way of acceptorWays(refused)) {
      try {
        return AcceptTracer.startWith(opts, { object, acceptor: way, listenerNames: false, refused }, onRecord);
      } catch (e) {
        if (!(e instanceof TcplensError)) throw e;
        refused.push(`${way.hook}: ${e.message}`);
      }
    }
    return AcceptTracer.startWith(opts, fallbackPlan(object, refused), onRecord);
  }

  /** Start with a given plan (start() chooses one; tests use this to prove each way on its own). */
  static startWith(opts: AcceptOptions, plan: AcceptPlan, onRecord: (r: AcceptRecord) => void): AcceptTracer {
    const obj = BpfObject.open(objectPath(`src/capabilities/accept/${plan.object}`));
    try {
      for (const p of ACCEPTOR_PROGRAMS) obj.setAutoload(p, p === plan.acceptor?.program);
      obj.setRodata(acceptRodata(obj, opts, plan));
      obj.setMaxEntries('merge', opts.mergeCapacity);
      obj.load();
      // the acceptor first: a connection that waits in `pending` always has someone to take it
      if (plan.acceptor) obj.attach(plan.acceptor.program);
      obj.attachCgroup('accept_sockops', opts.cgroup);
      const t = new AcceptTracer(obj, opts, plan, onRecord);
      t.names.start();
      t.ring.start();
      if (opts.mergeWindowNs > 0n || plan.acceptor) {
        const every = Math.min(1000, Math.max(100, Number(opts.mergeWindowNs / 4_000_000n)));
        t.sweepTimer = setInterval(() => t.sweep(false), every);
      }
      return t;
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  /** Listeners that were open before start (from /proc), once the first scan is done: their SYNs are not kept. */
  listenersBefore(): Promise<Listener[]> {
    return this.names.listeners();
  }

  counters(): AcceptCounters {
    return { ...readCounters<Exclude<keyof AcceptCounters, 'records'>>(this.obj, 'accept_counters'), records: this.records };
  }

  /** Detach, hand on everything collected (ring, open merge windows, events waiting for a name),
   * turn TCP_SAVE_SYN off where we turned it on, release. Safe to call twice. */
  stop(): Promise<AcceptStop> {
    this.stopped ??= (async () => {
      if (this.sweepTimer) clearInterval(this.sweepTimer);
      this.obj.detachAll();
      await this.ring.close();
      this.sweep(true);
      await this.names.flush();
      const counters = this.counters();
      let saveSyn: SaveSynUndo | null = null;
      try {
        if (this.opts.saveSyn) saveSyn = undoSaveSyn(this.obj);
      } finally {
        this.obj.close();
      }
      return { counters, saveSyn };
    })();
    return this.stopped;
  }

  private hand(dv: DataView, off: number): void {
    // Test hook: an error inside the ring's record handler must still end the process cleanly.
    if (process.env.TCPLENS_ACCEPT_FAILPOINT === 'record') throw new Error('failing on purpose in the record handler (TCPLENS_ACCEPT_FAILPOINT)');
    const { record, listener } = this.decoder.decode(dv, off);
    this.names.push(record, listener);
  }

  /** Report merge windows that have closed and connections nobody accepted (all of them when
   * flushing at exit), oldest first. */
  private sweep(all: boolean): void {
    const { merge, firstAt } = this;
    const now = process.hrtime.bigint();
    const ready: Buffer[] = [];
    const unaccepted: Buffer[] = [];
    for (const key of this.plan.acceptor ? this.pending.keys() : []) {
      const v = this.pending.lookup(key);
      if (!v || (!all && now - v.readBigUInt64LE(firstAt) < PENDING_NS)) continue;
      const taken = this.pending.lookupAndDelete(key);
      if (taken) unaccepted.push(taken);
    }
    for (const v of unaccepted.sort((a, b) => (a.readBigUInt64LE(firstAt) < b.readBigUInt64LE(firstAt) ? -1 : 1))) {
      const { record, listener } = this.decoder.decode(new DataView(v.buffer, v.byteOffset, v.byteLength), 0);
      this.names.push(record, listener);
    }
    for (const key of merge.keys()) {
      const v = merge.lookup(key);
      if (!v) continue;
      if (!all && now - v.readBigUInt64LE(firstAt) < this.opts.mergeWindowNs + SWEEP_GRACE_NS) continue;
      const taken = merge.lookupAndDelete(key);
      if (taken) ready.push(taken);
    }
    ready.sort((a, b) => (a.readBigUInt64LE(firstAt) < b.readBigUInt64LE(firstAt) ? -1 : 1));
    for (const v of ready) {
      if (v.readUInt32LE(this.countAt) < 2) continue; // its only connection was reported when it came
      v[this.flagsAt] |= F_SUMMARY;
      const { record, listener } = this.decoder.decode(new DataView(v.buffer, v.byteOffset, v.byteLength), 0);
      this.names.push(record, listener);
    }
  }
}
