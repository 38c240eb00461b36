// Per-connection TCP reassembly: each direction's payload comes out in order, once. Out-of-order
// segments wait (copied) until the hole before them fills; retransmitted and overlapping bytes are
// dropped, the first-seen copy winning; a hole nobody fills is given up as a gap when limits or
// the end of the flow demand it, so the layer above can re-synchronise. Memory is bounded: at
// most `perFlowBytes` waiting per connection, `totalBytes` in all, `maxFlows` connections.
// Sequence numbers are 32-bit and wrap; positions here are byte counts since the first byte
// seen, so wrap-around costs nothing.
import { formatAddr, formatEndpoint } from './addr.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type TcpSegment, type TunnelType } from './packet.js';

export interface ReassemblyLimits {
  /** Out-of-order bytes one connection may hold before its oldest hole is given up. */
  perFlowBytes: number;
  /** Out-of-order bytes all connections may hold together. */
  totalBytes: number;
  /** Connections tracked at once; the least recently active is evicted beyond it. */
  maxFlows: number;
  /** A connection silent this long is closed by expire(). */
  idleTimeoutMs: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = {
  perFlowBytes: 1 << 20,
  totalBytes: 64 << 20,
  maxFlows: 100_000,
  idleTimeoutMs: 120_000,
};

/** How far past the bytes we hold an ACK may reach and still be believed (lost tail segments). */
const MAX_ACK_BEYOND_BYTES = 1 << 20;
/** A segment this far past the next expected byte is not of this connection's window. */
const MAX_AHEAD_BYTES = 1 << 30;

export type CloseReason = 'fin' | 'reset' | 'idle' | 'evicted' | 'end';

export interface FlowTunnel { type: TunnelType; src: string; dst: string }

export interface FlowInfo {
  /** "addr:port" of the connection's initiator (the SYN's sender; guessed when no SYN was seen). */
  client: string;
  server: string;
  vlan: number | null;
  /** Outer addresses of the client-to-server direction. */
  tunnel: FlowTunnel | null;
}

/** What reassembly hands the layer above, per connection. `fromClient` says the direction. */
export interface StreamSink {
  onData(fromClient: boolean, data: Uint8Array, timeMs: number): void;
  /** `bytes` is the size of the hole; null when the stream was picked up mid-way (start unknown). */
  onGap(fromClient: boolean, bytes: number | null, timeMs: number): void;
  onFin(fromClient: boolean, timeMs: number): void;
  onClose(reason: CloseReason, timeMs: number): void;
}

export interface ReassemblyCounters {
  flows: number;
  segments: number;
  retransmittedSegments: number;
  overlapBytes: number;
  outOfWindowSegments: number;
  gaps: number;
  gapBytes: number;
  /** Holes given up because a per-flow or total limit was reached. */
  holesGivenUp: number;
  /** Holes given up because the peer acknowledged bytes past them: the capture lost them. */
  holesAcked: number;
  evictedFlows: number;
  expiredFlows: number;
  resets: number;
  /** Segments that started nothing: a bare ACK/FIN/RST of a connection we do not track. */
  ignoredSegments: number;
}

interface Piece { start: number; end: number; data: Uint8Array | null; timeMs: number }

class Direction {
  started = false;
  /** Sequence number of `next` (mod 2^32). */
  nextSeq = 0;
  /** Position of the next byte to deliver, counted from the first byte. */
  next = 0;
  pending: Piece[] = [];
  pendingBytes = 0;
  finAt = -1;
  finDone = false;

  position(seq: number): number { return this.next + ((seq - this.nextSeq) | 0); }
  advance(to: number): void {
    this.nextSeq = (this.nextSeq + (to - this.next)) >>> 0;
    this.next = to;
  }
}

class Connection {
  readonly toServer = new Direction();
  readonly toClient = new Direction();
  lastMs = 0;
  closed = false;
  resetSeen = false;
  constructor(readonly key: string, readonly clientKey: string, readonly sink: StreamSink) {}
  dir(fromClient: boolean): Direction { return fromClient ? this.toServer : this.toClient; }
  get pendingBytes(): number { return this.toServer.pendingBytes + this.toClient.pendingBytes; }
}

function addrKey(b: Uint8Array, at: number, family: 4 | 6): string {
  if (family === 4) return String(((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0);
  let s = '';
  for (let i = 0; i < 16; i++) s += b[at + i].toString(16).padStart(2, '0');
  return s;
}

export class TcpReassembler {
  readonly counters: ReassemblyCounters = {
    flows: 0, segments: 0, retransmittedSegments: 0, overlapBytes: 0, outOfWindowSegments: 0, gaps: 0, gapBytes: 0,
    holesGivenUp: 0, holesAcked: 0, evictedFlows: 0, expiredFlows: 0, resets: 0, ignoredSegments: 0,
  };
  /** Insertion order is activity order: a connection is moved to the end when it sees a segment. */
  private readonly conns = new Map<string, Connection>();
  private totalPending = 0;

  constructor(
    private readonly openSink: (flow: FlowInfo) => StreamSink,
    private readonly limits: ReassemblyLimits = DEFAULT_REASSEMBLY_LIMITS,
    /** Which ports are servers', to tell client from server when no SYN was seen. */
    private readonly isServerPort: (port: number) => boolean = () => false,
  ) {}

  get flowCount(): number { return this.conns.size; }
  get pendingBytes(): number { return this.totalPending; }

  segment(seg: TcpSegment, timeMs: number): void {
    this.counters.segments++;
    const f = seg.frame;
    const src = `${addrKey(f, seg.srcOff, seg.family)}.${seg.srcPort}`;
    const dst = `${addrKey(f, seg.dstOff, seg.family)}.${seg.dstPort}`;
    let ctx = seg.vlan === null ? '' : `v${seg.vlan}.${seg.vlanInner ?? ''}`;
    if (seg.tunnel) {
      const os = addrKey(f, seg.outerSrcOff, 4), od = addrKey(f, seg.outerDstOff, 4);
      ctx += os < od ? `t${os}-${od}` : `t${od}-${os}`;
    }
    const key = src < dst ? `${ctx}|${src}|${dst}` : `${ctx}|${dst}|${src}`;
    const syn = (seg.flags & TCP_SYN) !== 0;
    const ack = (seg.flags & TCP_ACK) !== 0;
    let conn = this.conns.get(key);
    // A new SYN on a connection that has ended (or was reset) is the 4-tuple reused.
    if (conn && syn && !ack && (conn.resetSeen || conn.toServer.finDone || conn.toClient.finDone)) {
      this.close(conn, 'fin', timeMs);
      conn = undefined;
    }
    if (!conn) {
      if ((seg.flags & TCP_RST) !== 0 || (!syn && seg.payloadLen === 0)) { this.counters.ignoredSegments++; return; }
      conn = this.open(key, seg, src, dst, syn, ack);
    } else {
      this.conns.delete(key);
      this.conns.set(key, conn);
    }
    conn.lastMs = timeMs;
    const fromClient = src === conn.clientKey;
    const d = conn.dir(fromClient);
    if ((seg.flags & TCP_RST) !== 0) {
      this.counters.resets++;
      conn.resetSeen = true;
      this.close(conn, 'reset', timeMs);
      return;
    }
    // The peer has the bytes of a hole we are waiting on (it acknowledged data we hold beyond
    // it): they will not come again, so waiting would only stall the stream. Before this
    // segment's own data, so what was held back goes up first.
    if (ack) this.giveUpAckedHoles(conn, !fromClient, seg.ack, timeMs);
    if (conn.closed) return;
    let dataSeq = seg.seq;
    if (syn) {
      if (d.started) {
        if (seg.payloadLen === 0) { this.counters.retransmittedSegments++; return; }
      } else {
        d.started = true;
        d.nextSeq = (seg.seq + 1) >>> 0;
      }
      dataSeq = (seg.seq + 1) >>> 0;
    } else if (!d.started) {
      d.started = true;
      d.nextSeq = seg.seq;
      conn.sink.onGap(fromClient, null, timeMs);
    }
    const start = d.position(dataSeq);
    const dataEnd = start + seg.payloadLen;
    const wireEnd = dataEnd + seg.payloadMissing;
    if (start - d.next > MAX_AHEAD_BYTES || d.next - wireEnd > MAX_AHEAD_BYTES) { this.counters.outOfWindowSegments++; return; }
    if (seg.payloadLen > 0) this.insert(conn, fromClient, d, start, f.subarray(seg.payloadOff, seg.payloadOff + seg.payloadLen), timeMs);
    // Bytes the snaplen cut off will never come: a hole known at once.
    if (seg.payloadMissing > 0) this.insert(conn, fromClient, d, dataEnd, null, timeMs, wireEnd);
    if ((seg.flags & TCP_FIN) !== 0 && d.finAt < 0) d.finAt = wireEnd;
    this.settle(conn, fromClient, d, timeMs);
    if (!conn.closed) this.enforceTotal(timeMs);
  }

  /** Closes connections idle for longer than the limit; call it as packet time advances. */
  expire(nowMs: number): void {
    for (const conn of this.conns.values()) {
      if (nowMs - conn.lastMs <= this.limits.idleTimeoutMs) break;
      this.counters.expiredFlows++;
      this.giveUpAll(conn, nowMs);
      this.close(conn, 'idle', nowMs);
    }
  }

  /** End of input: what waits behind holes is delivered after a gap, then every connection closes. */
  flush(timeMs: number): void {
    for (const conn of [...this.conns.values()]) {
      this.giveUpAll(conn, timeMs);
      if (!conn.closed) this.close(conn, 'end', timeMs);
    }
  }

  private open(key: string, seg: TcpSegment, src: string, dst: string, syn: boolean, ack: boolean): Connection {
    if (this.conns.size >= this.limits.maxFlows) {
      const oldest = this.conns.values().next().value as Connection;
      this.counters.evictedFlows++;
      this.close(oldest, 'evicted', oldest.lastMs);
    }
    let srcIsClient: boolean;
    if (syn) srcIsClient = !ack;
    else if (this.isServerPort(seg.dstPort) !== this.isServerPort(seg.srcPort)) srcIsClient = this.isServerPort(seg.dstPort);
    else srcIsClient = seg.srcPort >= seg.dstPort; // ephemeral ports are the high ones
    const f = seg.frame;
    const srcText = formatEndpoint(f.subarray(seg.srcOff), seg.family, seg.srcPort);
    const dstText = formatEndpoint(f.subarray(seg.dstOff), seg.family, seg.dstPort);
    let tunnel: FlowTunnel | null = null;
    if (seg.tunnel) {
      const os = formatAddr(f.subarray(seg.outerSrcOff), 4), od = formatAddr(f.subarray(seg.outerDstOff), 4);
      tunnel = srcIsClient ? { type: seg.tunnel, src: os, dst: od } : { type: seg.tunnel, src: od, dst: os };
    }
    const info: FlowInfo = { client: srcIsClient ? srcText : dstText, server: srcIsClient ? dstText : srcText, vlan: seg.vlan, tunnel };
    const conn = new Connection(key, srcIsClient ? src : dst, this.openSink(info));
    this.conns.set(key, conn);
    this.counters.flows++;
    return conn;
  }

  /** Adds [start, end) to a direction, keeping only bytes not seen before (first copy wins). */
  private insert(conn: Connection, fromClient: boolean, d: Direction, start: number, data: Uint8Array | null, timeMs: number, gapEnd = start): void {
    const end = data ? start + data.length : gapEnd;
    if (end <= d.next) { this.counters.retransmittedSegments++; return; }
    if (start < d.next) { this.counters.overlapBytes += d.next - start; if (data) data = data.subarray(d.next - start); start = d.next; }
    if (start === d.next && d.pending.length === 0 && data) {
      // The common case: in order, nothing waiting. Deliver the view, no copy.
      d.advance(end);
      conn.sink.onData(fromClient, data, timeMs);
      return;
    }
    // Find where it goes and cut it around the pieces already waiting.
    let i = 0;
    while (i < d.pending.length && d.pending[i].end <= start) i++;
    while (start < end) {
      const p = d.pending[i];
      if (!p || end <= p.start) { this.addPiece(d, i, start, end, data, timeMs); return; }
      if (start < p.start) {
        this.addPiece(d, i, start, p.start, data ? data.subarray(0, p.start - start) : null, timeMs);
        i++;
      }
      this.counters.overlapBytes += Math.min(end, p.end) - Math.max(start, p.start);
      if (data) data = data.subarray(Math.min(data.length, p.end - start));
      start = p.end;
      i++;
    }
  }

  private addPiece(d: Direction, i: number, start: number, end: number, data: Uint8Array | null, timeMs: number): void {
    if (end <= start) return;
    d.pending.splice(i, 0, { start, end, data: data ? Uint8Array.from(data.subarray(0, end - start)) : null, timeMs });
    d.pendingBytes += end - start;
    this.totalPending += end - start;
  }

  /** Delivers what has become contiguous, gives up holes past the per-flow limit, handles FIN. */
  private settle(conn: Connection, fromClient: boolean, d: Direction, timeMs: number): void {
    this.drain(conn, fromClient, d);
    while (conn.pendingBytes > this.limits.perFlowBytes && !conn.closed) {
      const dd = conn.toServer.pendingBytes >= conn.toClient.pendingBytes ? conn.toServer : conn.toClient;
      this.counters.holesGivenUp++;
      this.skipHole(conn, dd === conn.toServer, dd, timeMs);
    }
    if (d.finAt >= 0 && !d.finDone && d.next >= d.finAt && d.pending.length === 0) {
      d.finDone = true;
      conn.sink.onFin(fromClient, timeMs);
    }
    if (!conn.closed && conn.toServer.finDone && conn.toClient.finDone) this.close(conn, 'fin', timeMs);
  }

  private drain(conn: Connection, fromClient: boolean, d: Direction): void {
    while (d.pending.length > 0 && d.pending[0].start <= d.next) {
      const p = d.pending.shift()!;
      d.pendingBytes -= p.end - p.start;
      this.totalPending -= p.end - p.start;
      if (p.end <= d.next) continue;
      if (p.data === null) {
        this.gap(conn, fromClient, p.end - d.next, p.timeMs);
        d.advance(p.end);
        continue;
      }
      const from = d.next - p.start;
      d.advance(p.end);
      conn.sink.onData(fromClient, from === 0 ? p.data : p.data.subarray(from), p.timeMs);
      if (conn.closed) return;
    }
  }

  private gap(conn: Connection, fromClient: boolean, bytes: number, timeMs: number): void {
    this.counters.gaps++;
    this.counters.gapBytes += bytes;
    conn.sink.onGap(fromClient, bytes, timeMs);
  }

  /** Gives up the first hole of a direction: reported as a gap, then the data after it flows. */
  private skipHole(conn: Connection, fromClient: boolean, d: Direction, timeMs: number): void {
    const first = d.pending[0];
    if (!first) return;
    if (first.start > d.next) {
      this.gap(conn, fromClient, first.start - d.next, timeMs);
      d.advance(first.start);
    }
    this.drain(conn, fromClient, d);
  }

  private giveUpAckedHoles(conn: Connection, fromClient: boolean, ackSeq: number, timeMs: number): void {
    const d = conn.dir(fromClient);
    if (d.pending.length === 0) return;
    const acked = d.position(ackSeq);
    // An ACK far past everything we hold is not of this stream (garbage, or another connection's).
    if (acked > d.pending[d.pending.length - 1].end + MAX_ACK_BEYOND_BYTES) return;
    while (!conn.closed && d.pending.length > 0 && d.pending[0].start > d.next && d.pending[0].start <= acked) {
      this.counters.holesAcked++;
      this.skipHole(conn, fromClient, d, timeMs);
    }
  }

  private giveUpAll(conn: Connection, timeMs: number): void {
    for (const fromClient of [true, false]) {
      const d = conn.dir(fromClient);
      while (d.pending.length > 0 && !conn.closed) this.skipHole(conn, fromClient, d, timeMs);
      if (conn.closed) return;
      // A FIN past a hole that never filled: the bytes before it are lost, the FIN still counts.
      if (d.finAt > d.next && !d.finDone) { this.gap(conn, fromClient, d.finAt - d.next, timeMs); d.advance(d.finAt); }
      if (d.finAt >= 0 && !d.finDone && d.next >= d.finAt) { d.finDone = true; conn.sink.onFin(fromClient, timeMs); }
    }
  }

  private enforceTotal(timeMs: number): void {
    if (this.totalPending <= this.limits.totalBytes) return;
    for (const conn of this.conns.values()) {
      if (this.totalPending <= this.limits.totalBytes) return;
      while (conn.pendingBytes > 0 && !conn.closed && this.totalPending > this.limits.totalBytes) {
        const fromClient = conn.toServer.pendingBytes > 0;
        this.counters.holesGivenUp++;
        this.skipHole(conn, fromClient, conn.dir(fromClient), timeMs);
      }
    }
  }

  private close(conn: Connection, reason: CloseReason, timeMs: number): void {
    if (conn.closed) return;
    conn.closed = true;
    for (const d of [conn.toServer, conn.toClient]) {
      this.totalPending -= d.pendingBytes;
      d.pendingBytes = 0;
      d.pending = [];
    }
    this.conns.delete(conn.key);
    conn.sink.onClose(reason, timeMs);
  }
}
