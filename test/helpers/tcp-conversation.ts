// Builds the frames of TCP connections for tests and fixtures: handshake, data cut into segments,
// FIN or RST, with VLAN tags or an IPIP tunnel, and times that advance by a fixed step. The test
// then reorders, duplicates or drops frames as it likes. Pure: nothing is sent anywhere.
import { PcapWriter } from '../../src/net/pcap.js';
import { buildFrame, type FrameSpec } from './frames.js';

export interface TimedFrame { frame: Uint8Array; timeMs: number; fromClient: boolean }

export interface ConversationSpec {
  client: string;
  server: string;
  clientPort: number;
  serverPort: number;
  vlans?: number[];
  tunnel?: { type: 'ipip' | 'sit'; src: string; dst: string };
  clientIsn?: number;
  serverIsn?: number;
  startMs?: number;
  stepMs?: number;
}

export class TcpConversation {
  readonly frames: TimedFrame[] = [];
  private seq: [number, number];
  private nowMs: number;
  private readonly step: number;

  constructor(private readonly spec: ConversationSpec) {
    this.seq = [spec.clientIsn ?? 1000, spec.serverIsn ?? 5000];
    this.nowMs = spec.startMs ?? Date.UTC(2026, 11, 1, 12, 0, 0);
    this.step = spec.stepMs ?? 1;
  }

  get timeMs(): number { return this.nowMs; }
  /** Moves the clock on (a server thinking, say). */
  wait(ms: number): this { this.nowMs += ms; return this; }

  private frame(fromClient: boolean, flags: number, payload: Uint8Array, seq: number): TimedFrame {
    const s = this.spec;
    const t = s.tunnel;
    const spec: FrameSpec = {
      src: fromClient ? s.client : s.server, dst: fromClient ? s.server : s.client,
      sport: fromClient ? s.clientPort : s.serverPort, dport: fromClient ? s.serverPort : s.clientPort,
      seq, ack: this.seq[fromClient ? 1 : 0], flags, payload, vlans: s.vlans,
      tunnel: t && (fromClient ? t : { type: t.type, src: t.dst, dst: t.src }),
    };
    const f = { frame: buildFrame(spec), timeMs: this.nowMs, fromClient };
    this.nowMs += this.step;
    return f;
  }

  handshake(): this {
    this.frames.push(this.frame(true, 0x02, new Uint8Array(0), this.seq[0]));
    this.seq[0] = (this.seq[0] + 1) >>> 0;
    this.frames.push(this.frame(false, 0x12, new Uint8Array(0), this.seq[1]));
    this.seq[1] = (this.seq[1] + 1) >>> 0;
    this.frames.push(this.frame(true, 0x10, new Uint8Array(0), this.seq[0]));
    return this;
  }

  /** Data in segments of at most `mss` bytes; returns the frames it added. */
  send(fromClient: boolean, data: string | Uint8Array, mss = 1460): TimedFrame[] {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const out: TimedFrame[] = [];
    const i = fromClient ? 0 : 1;
    for (let at = 0; at < bytes.length; at += mss) {
      const piece = bytes.subarray(at, at + mss);
      out.push(this.frame(fromClient, 0x18, piece, this.seq[i]));
      this.seq[i] = (this.seq[i] + piece.length) >>> 0;
    }
    this.frames.push(...out);
    return out;
  }

  fin(fromClient: boolean): this {
    const i = fromClient ? 0 : 1;
    this.frames.push(this.frame(fromClient, 0x11, new Uint8Array(0), this.seq[i]));
    this.seq[i] = (this.seq[i] + 1) >>> 0;
    return this;
  }

  rst(fromClient: boolean): this {
    this.frames.push(this.frame(fromClient, 0x04, new Uint8Array(0), this.seq[fromClient ? 0 : 1]));
    return this;
  }

  /** Handshake, the exchanges in order (each request then its response), FIN both ways. */
  static simple(spec: ConversationSpec, exchanges: Array<[string, string]>, mss = 1460): TcpConversation {
    const c = new TcpConversation(spec).handshake();
    for (const [req, resp] of exchanges) { c.send(true, req, mss); c.wait(5); c.send(false, resp, mss); }
    return c.fin(true).fin(false);
  }
}

/** One pcap record for a timed frame (its millisecond time split into seconds and nanoseconds). */
export function pcapRecord(w: PcapWriter, f: TimedFrame): Buffer {
  return w.record(Math.floor(f.timeMs / 1000), (f.timeMs % 1000) * 1e6, f.frame);
}

/** A whole classic pcap of the frames, in their order. */
export function pcapOf(frames: TimedFrame[], w: PcapWriter = new PcapWriter({ nanosecond: true })): Buffer {
  return Buffer.concat([w.header(), ...frames.map((f) => pcapRecord(w, f))]);
}
