// tcplens accept, user side: options -> rodata, the load/attach plan, decoding events (layout read
// from the object's BTF), and the sweeper that hands on merge windows once they close.
import { BpfObject } from '../../kernel/bpf-object.js';
import { RingBufferReader } from '../../kernel/ring-buffer.js';
import { readCounters } from '../../kernel/counters.js';
import { objectPath } from '../../kernel/paths.js';
import type { StructLayout } from '../../kernel/btf.js';
import type { BpfMap } from '../../kernel/bpf-map.js';
import { formatEndpoint, type Cidr, type Family } from '../../net/addr.js';
import type { ToaDialect } from '../../net/toa.js';
import { toaTablesRodata } from '../shared/toa-tables.js';
import { ProcListeners, ownNetnsCookie } from './listeners.js';

export interface AcceptOptions {
  /** cgroup v2 directory whose processes' connections are seen */
  cgroup: string;
  ports: number[];
  family: 0 | 4 | 6;
  mergeWindowNs: bigint;
  trusted: Cidr[];
  dialects: ToaDialect[];
  saveSyn: boolean;
  /** read toa.ko's per-socket TOA (worth it only where the module is loaded) */
  readToaKo: boolean;
}

export type ToaSource = 'ack' | 'syn' | 'toa.ko';

export interface AcceptRecord {
  time: string;
  /** last connection of a merged window (only when count > 1) */
  last?: string;
  local: string;
  peer: string;
  /** the real client, when a trusted TOA named one */
  client: string | null;
  toa: { kind: number; len: number; source: ToaSource; claimed: string } | null;
  /** true: the TOA came from a trusted balancer; false: it did not and was ignored; null: no TOA */
  trusted: boolean | null;
  malformed: boolean;
  count: number;
  /** in-kernel cost per connection, ns */
  kernel_ns: number;
  pid: number | null;
  comm: string | null;
}

/** The kernel's counters, plus `records`: events handed on (from the ring and from closed windows). */
export type AcceptCounters = Record<'lost' | 'connections' | 'events' | 'merged' | 'toa_seen' | 'toa_untrusted' |
  'toa_malformed' | 'no_toa' | 'filtered' | 'records', number>;

export const MAX_PORTS = 8;
const F_CLIENT = 1, F_TOA = 2, F_UNTRUSTED = 4, F_MALFORMED = 8;
const SOURCES: Record<number, ToaSource> = { 1: 'ack', 2: 'syn', 3: 'toa.ko' };
/** A window is swept only this long after it closed, so the kernel never counts into an entry we take. */
const SWEEP_GRACE_NS = 200_000_000n;

/** Decodes accept_event records; every offset comes from BTF. */
export class AcceptDecoder {
  private readonly o: Record<string, number>;
  private readonly ep: { addr: number; port: number; family: number };
  private readonly wallMinusMonoMs: number;

  constructor(event: StructLayout, endpoint: StructLayout, private readonly listeners?: (netns: bigint, port: number) => { pid: number; comm: string } | null) {
    this.o = Object.fromEntries(['first_ns', 'last_ns', 'kernel_ns', 'netns'].map((n) => [n, event.offset(n, 8)]));
    for (const n of ['count', 'pid']) this.o[n] = event.offset(n, 4);
    for (const n of ['local', 'peer', 'client']) this.o[n] = event.offset(n, endpoint.size);
    for (const n of ['toa_kind', 'toa_len', 'toa_source', 'flags']) this.o[n] = event.offset(n, 1);
    this.o.comm = event.offset('comm', 16);
    this.ep = { addr: endpoint.offset('addr', 16), port: endpoint.offset('port', 2), family: endpoint.offset('family', 1) };
    this.wallMinusMonoMs = Date.now() - Number(process.hrtime.bigint() / 1_000_000n);
  }

  decode(dv: DataView, at: number): AcceptRecord {
    const o = this.o;
    const flags = dv.getUint8(at + o.flags);
    const count = dv.getUint32(at + o.count, true);
    const first = dv.getBigUint64(at + o.first_ns, true);
    const last = dv.getBigUint64(at + o.last_ns, true);
    const hasToa = (flags & F_TOA) !== 0;
    const claimed = this.endpoint(dv, at + o.client);
    let pid: number | null = dv.getUint32(at + o.pid, true) || null;
    let comm: string | null = pid ? this.cString(dv, at + o.comm, 16) : null;
    if (!pid && this.listeners) {
      const who = this.listeners(dv.getBigUint64(at + o.netns, true), dv.getUint16(at + o.local + this.ep.port, true));
      if (who) ({ pid, comm } = who);
    }
    const rec: AcceptRecord = {
      time: this.wall(first),
      local: this.endpoint(dv, at + o.local),
      peer: this.endpoint(dv, at + o.peer),
      client: flags & F_CLIENT ? claimed : null,
      toa: hasToa ? { kind: dv.getUint8(at + o.toa_kind), len: dv.getUint8(at + o.toa_len), source: SOURCES[dv.getUint8(at + o.toa_source)] ?? 'ack', claimed } : null,
      trusted: hasToa ? (flags & F_UNTRUSTED) === 0 : null,
      malformed: (flags & F_MALFORMED) !== 0,
      count,
      kernel_ns: count ? Math.round(Number(dv.getBigUint64(at + o.kernel_ns, true)) / count) : 0,
      pid,
      comm,
    };
    if (count > 1) rec.last = this.wall(last);
    return rec;
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
export function acceptRodata(obj: BpfObject, opts: AcceptOptions): Record<string, number | bigint | Uint8Array> {
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
  };
}

export class AcceptTracer {
  private readonly ring: RingBufferReader;
  private readonly decoder: AcceptDecoder;
  private sweepTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private records = 0;
  private readonly onRecord: (r: AcceptRecord) => void;
  private readonly merge: BpfMap;
  private readonly firstAt: number;

  private constructor(private readonly obj: BpfObject, private readonly opts: AcceptOptions,
    onRecord: (r: AcceptRecord) => void) {
    this.onRecord = (r) => { this.records++; onRecord(r); };
    const event = obj.struct('accept_event');
    this.merge = obj.map('merge');
    this.firstAt = event.offset('first_ns', 8);
    const own = ownNetnsCookie();
    const proc = new ProcListeners();
    this.decoder = new AcceptDecoder(event, obj.struct('tcplens_endpoint'),
      (netns, port) => (netns === own ? proc.lookup(port) : null));
    this.ring = new RingBufferReader(obj.map('events'), (dv, off) => this.onRecord(this.decoder.decode(dv, off)));
  }

  /** Open, configure, load and attach; events flow to onRecord until stop(). */
  static start(opts: AcceptOptions, onRecord: (r: AcceptRecord) => void): AcceptTracer {
    const obj = BpfObject.open(objectPath('src/capabilities/accept/accept'));
    try {
      obj.setRodata(acceptRodata(obj, opts));
      obj.load();
      obj.attachCgroup('accept_sockops', opts.cgroup);
      const t = new AcceptTracer(obj, opts, onRecord);
      t.ring.start();
      if (opts.mergeWindowNs > 0n) {
        const every = Math.min(1000, Math.max(100, Number(opts.mergeWindowNs / 4_000_000n)));
        t.sweepTimer = setInterval(() => t.sweep(false), every);
      }
      return t;
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  counters(): AcceptCounters {
    return { ...readCounters<Exclude<keyof AcceptCounters, 'records'>>(this.obj, 'accept_counters'), records: this.records };
  }

  /** Detach, hand on everything collected (ring and open merge windows), release. */
  async stop(): Promise<AcceptCounters> {
    if (this.stopped) return this.counters();
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.obj.detachAll();
    await this.ring.close();
    this.sweep(true);
    const counters = this.counters();
    this.obj.close();
    return counters;
  }

  /** Hand on merge windows that have closed (all of them when flushing at exit), oldest first. */
  private sweep(all: boolean): void {
    const { merge, firstAt } = this;
    const now = process.hrtime.bigint();
    const ready: Buffer[] = [];
    for (const key of merge.keys()) {
      const v = merge.lookup(key);
      if (!v) continue;
      if (!all && now - v.readBigUInt64LE(firstAt) < this.opts.mergeWindowNs + SWEEP_GRACE_NS) continue;
      const taken = merge.lookupAndDelete(key);
      if (taken) ready.push(taken);
    }
    ready.sort((a, b) => (a.readBigUInt64LE(firstAt) < b.readBigUInt64LE(firstAt) ? -1 : 1));
    for (const v of ready) this.onRecord(this.decoder.decode(new DataView(v.buffer, v.byteOffset, v.byteLength), 0));
  }
}
