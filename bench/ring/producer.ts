// Drives ring-producer.bpf.c (a syscall program run with BPF_PROG_TEST_RUN) and decodes its events.
// Shared by the ring reader's tests and benchmark. Every offset comes from the object's BTF; the
// offsets are plain data so a producer child process that only holds the program fd can use them.
import { bpf, errno, strerror, testRunOpts } from '../../src/kernel/libbpf.js';
import { readCounters } from '../../src/kernel/counters.js';
import type { BpfObject } from '../../src/kernel/bpf-object.js';

export const RING_MODE_EMIT = 0, RING_MODE_HOLD = 1;
export const RING_COOKIE_MUL = 0x9e3779b97f4a7c15n;
export const RING_PID_XOR = 0x5a5a5a5a;
export const RING_MAX_RECORD = 256;

/** Offsets inside struct ring_produce_args. */
export interface ArgsLayout {
  size: number;
  seq_base: number; hold_ns: number; count: number; record_size: number; discard_every: number; mode: number;
  emitted: number; discarded: number; failed: number;
}

export interface ProduceRequest {
  seqBase: number;
  count: number;
  /** record length in bytes, 120..256 (default: sizeof(struct ring_event)) */
  size?: number;
  discardEvery?: number;
  /** RING_MODE_HOLD: records seqBase (A), +1 (B, left busy for holdNs), +2 (C, committed while B is busy) */
  holdNs?: number;
}

export interface ProduceResult { retval: number; emitted: number; discarded: number; failed: number }

export function argsLayout(obj: BpfObject): ArgsLayout {
  const a = obj.struct('ring_produce_args');
  return {
    size: a.size,
    seq_base: a.offset('seq_base', 8), hold_ns: a.offset('hold_ns', 8), count: a.offset('count', 4),
    record_size: a.offset('size', 4), discard_every: a.offset('discard_every', 4), mode: a.offset('mode', 4),
    emitted: a.offset('emitted', 4), discarded: a.offset('discarded', 4), failed: a.offset('failed', 4),
  };
}

/** Runs the producer program; the async form runs on a koffi worker thread so the JS thread stays free. */
export class Producer {
  constructor(readonly progFd: number, readonly layout: ArgsLayout, readonly eventSize = 120) {}

  static of(obj: BpfObject): Producer {
    return new Producer(obj.program('produce').fd, argsLayout(obj), obj.struct('ring_event').size);
  }

  runSync(req: ProduceRequest): ProduceResult {
    const { ctx, opts } = this.prepare(req);
    return this.result(bpf.prog_test_run_opts(this.progFd, opts) as number, ctx);
  }

  run(req: ProduceRequest): Promise<ProduceResult> {
    const { ctx, opts } = this.prepare(req);
    return new Promise((resolve, reject) => {
      bpf.prog_test_run_opts.async(this.progFd, opts, (err: unknown, rc: number) => {
        if (err) reject(err);
        else {
          try { resolve(this.result(rc, ctx)); } catch (e) { reject(e); }
        }
        void ctx; // keep the context alive until the kernel is done with it
      });
    });
  }

  private prepare(req: ProduceRequest): { ctx: Buffer; opts: Buffer } {
    const l = this.layout;
    const ctx = Buffer.alloc(l.size);
    ctx.writeBigUInt64LE(BigInt(req.seqBase), l.seq_base);
    ctx.writeBigUInt64LE(BigInt(req.holdNs ?? 0), l.hold_ns);
    ctx.writeUInt32LE(req.count, l.count);
    ctx.writeUInt32LE(req.size ?? this.eventSize, l.record_size);
    ctx.writeUInt32LE(req.discardEvery ?? 0, l.discard_every);
    ctx.writeUInt32LE(req.holdNs !== undefined ? RING_MODE_HOLD : RING_MODE_EMIT, l.mode);
    return { ctx, opts: testRunOpts({ ctxIn: ctx }) };
  }

  private result(rc: number, ctx: Buffer): ProduceResult {
    if (rc < 0) throw new Error(`BPF_PROG_TEST_RUN of produce: ${strerror(errno() || -rc)}`);
    const l = this.layout;
    return { retval: rc, emitted: ctx.readUInt32LE(l.emitted), discarded: ctx.readUInt32LE(l.discarded), failed: ctx.readUInt32LE(l.failed) };
  }
}

/** The `lost` counter (and the others) summed over CPUs, read through BTF by field name. */
export function ringCounters(obj: BpfObject): { lost: number; emitted: number; discarded: number } {
  return readCounters<'lost' | 'emitted' | 'discarded'>(obj, 'ring_counters');
}

export interface RingEvent {
  seq: number;
  tsNs: number;
  cookieLo: number;
  netns: number;
  count: number;
  pid: number;
  local: { port: number; family: number; addr4: number };
  peer: { port: number; family: number; addr4: number };
  client: { port: number; family: number };
  toa: { kind: number; len: number; source: number };
  flags: number;
}

const TWO32 = 4294967296;

/** Decodes ring_event into a plain object, as a capability's decoder would (numbers, no BigInt). */
export function eventDecoder(obj: BpfObject): (dv: DataView, at: number) => RingEvent {
  const ev = obj.struct('ring_event');
  const ep = obj.struct('tcplens_endpoint');
  const seq = ev.offset('seq', 8), ts = ev.offset('ts_ns', 8), cookie = ev.offset('cookie', 8), netns = ev.offset('netns', 8);
  const count = ev.offset('count', 4), pid = ev.offset('pid', 4);
  const local = ev.offset('local', ep.size), peer = ev.offset('peer', ep.size), client = ev.offset('client', ep.size);
  const kind = ev.offset('toa_kind', 1), len = ev.offset('toa_len', 1), source = ev.offset('toa_source', 1), flags = ev.offset('flags', 1);
  const addr = ep.offset('addr', 16), port = ep.offset('port', 2), family = ep.offset('family', 1);
  const u64 = (dv: DataView, at: number): number => dv.getUint32(at, true) + dv.getUint32(at + 4, true) * TWO32;
  return (dv, at) => ({
    seq: u64(dv, at + seq),
    tsNs: u64(dv, at + ts),
    cookieLo: dv.getUint32(at + cookie, true),
    netns: u64(dv, at + netns),
    count: dv.getUint32(at + count, true),
    pid: dv.getUint32(at + pid, true),
    local: { port: dv.getUint16(at + local + port, true), family: dv.getUint8(at + local + family), addr4: dv.getUint32(at + local + addr, false) },
    peer: { port: dv.getUint16(at + peer + port, true), family: dv.getUint8(at + peer + family), addr4: dv.getUint32(at + peer + addr, false) },
    client: { port: dv.getUint16(at + client + port, true), family: dv.getUint8(at + client + family) },
    toa: { kind: dv.getUint8(at + kind), len: dv.getUint8(at + len), source: dv.getUint8(at + source) },
    flags: dv.getUint8(at + flags),
  });
}

/** Every byte a record with this seq and length must hold (fields per ring-producer.h, then the tail). */
export function expectedRecord(obj: BpfObject, seq: bigint, length: number): Uint8Array {
  const ev = obj.struct('ring_event');
  const ep = obj.struct('tcplens_endpoint');
  const out = new Uint8Array(length);
  const dv = new DataView(out.buffer);
  const mask64 = (1n << 64n) - 1n;
  dv.setBigUint64(ev.offset('seq', 8), seq, true);
  dv.setBigUint64(ev.offset('cookie', 8), (seq * RING_COOKIE_MUL) & mask64, true);
  dv.setBigUint64(ev.offset('netns', 8), ~seq & mask64, true);
  dv.setUint32(ev.offset('count', 4), length, true);
  dv.setUint32(ev.offset('pid', 4), (Number(seq & 0xffffffffn) ^ RING_PID_XOR) >>> 0, true);
  const s = Number(seq & 0xffn);
  const local = ev.offset('local', ep.size), peer = ev.offset('peer', ep.size);
  for (let i = 0; i < 16; i++) {
    out[local + ep.offset('addr', 16) + i] = (s + i) & 0xff;
    out[peer + ep.offset('addr', 16) + i] = (s + 16 + i) & 0xff;
  }
  dv.setUint16(local + ep.offset('port', 2), Number(seq & 0xffffn), true);
  out[local + ep.offset('family', 1)] = 4;
  dv.setUint16(peer + ep.offset('port', 2), Number(~seq & 0xffffn), true);
  out[peer + ep.offset('family', 1)] = 6;
  out[ev.offset('toa_kind', 1)] = s;
  out[ev.offset('toa_len', 1)] = 8;
  out[ev.offset('toa_source', 1)] = 1;
  out.set(Buffer.from('ring-producer'), ev.offset('comm', 16));
  for (let k = ev.size; k < length; k++) out[k] = (s + k) & 0xff;
  return out;
}
