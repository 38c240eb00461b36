// HTTP/1.x over one reassembled TCP connection: a request parser on the client's bytes, a
// response parser on the server's, and FIFO pairing of responses with requests (pipelining).
// llhttp is strict (smuggling shapes such as Content-Length with Transfer-Encoding, or two
// Content-Lengths, are errors); an error ends parsing of THIS connection only, and its open
// exchanges come out with error "parse_error". After a gap (or a capture that starts mid-stream)
// a direction re-synchronises at the next request or status line.
import type { CloseReason, FlowInfo, FlowTunnel, StreamSink } from './tcp-reassembly.js';
import { LLHTTP_TYPE_REQUEST, LLHTTP_TYPE_RESPONSE, LlhttpParser, PAUSE, SKIP_BODY, UPGRADE_AFTER_HEADERS, type ExecuteResult, type LlhttpHandler } from './llhttp.js';

export type ExchangeError = 'no_response' | 'gap' | 'reset' | 'parse_error';

/** One request and its response, as `tcplens http --json` prints it. */
export interface HttpExchange {
  time: string;
  client: string;
  server: string;
  method: string;
  host: string | null;
  path: string;
  status: number | null;
  req_bytes: number;
  resp_bytes: number;
  latency_ms: number | null;
  vlan: number | null;
  tunnel: FlowTunnel | null;
  probe: string | null;
  error: ExchangeError | null;
}

export interface Http1Options {
  /** Request line plus header block bytes allowed per message; past it the connection is a parse error. */
  maxHeaderBytes: number;
  /** Request header whose value becomes `probe` (case-insensitive). */
  probeHeader: string;
}

export const DEFAULT_HTTP1_OPTIONS: Http1Options = { maxHeaderBytes: 64 * 1024, probeHeader: 'X-Tcplens-Probe' };

export interface Http1Counters {
  requests: number;
  responses: number;
  parseErrors: number;
  headerTooLarge: number;
  unpairedResponses: number;
  upgrades: number;
  resyncs: number;
  resyncSkippedBytes: number;
}

export function newHttp1Counters(): Http1Counters {
  return { requests: 0, responses: 0, parseErrors: 0, headerTooLarge: 0, unpairedResponses: 0, upgrades: 0, resyncs: 0, resyncSkippedBytes: 0 };
}

interface Request {
  startMs: number;
  endMs: number;
  method: string;
  host: string | null;
  path: string;
  probe: string | null;
  bodyBytes: number;
  error: ExchangeError | null;
}

interface Response {
  startMs: number;
  status: number;
  bodyBytes: number;
  interim: boolean;
  headersDone: boolean;
  /** It began before the oldest waiting request did, so it answers a request we never saw (lost in a gap). */
  orphan: boolean;
}

/** Longest value kept for Host and the probe header; longer ones are cut (they are for display). */
const MAX_KEPT_VALUE = 1024;
/** Requests awaiting a response on one connection; older ones are given up as no_response. */
const MAX_PENDING_REQUESTS = 256;
/** Client bytes held while an upgrade is undecided; past this they are given up (re-sync). */
const MAX_UPGRADE_HELD = 64 * 1024;
/** Bytes kept across chunks while looking for a start line, so one split in two is still found. */
const RESYNC_TAIL = 64;
// Not anchored to a line start: after a hole inside a body the next message follows the body's last byte.
const REQUEST_START = /(?:GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE|PROPFIND|PURGE) [\x21-\x7e]+ HTTP\/1\.[01]\r?\n/;
const RESPONSE_START = /HTTP\/1\.[01] [1-5]\d\d[ \r]/;

// 'upgrading': a request asked to switch protocols; its bytes wait until the response says yes or no.
type StreamState = 'parse' | 'resync' | 'upgrading' | 'stopped';

/** One direction's parser with its header-size accounting and re-sync state. */
class Half {
  parser: LlhttpParser;
  state: StreamState = 'parse';
  headerBytes = 0;
  held: Buffer = Buffer.alloc(0);
  constructor(type: typeof LLHTTP_TYPE_REQUEST | typeof LLHTTP_TYPE_RESPONSE, handler: LlhttpHandler) {
    this.parser = new LlhttpParser(type, handler);
  }
}

export class Http1Connection implements StreamSink {
  private readonly req: Half;
  private readonly resp: Half;
  /** Requests that began and await their response, oldest first. */
  private readonly queue: Request[] = [];
  private curReq: Request | null = null;
  private curResp: Response | null = null;
  private nowMs = 0;
  private field = '';
  private fieldDone = false;
  private capture: 'host' | 'probe' | null = null;
  private value = '';
  private readonly probeLower: string;
  private closed = false;
  /** The request that asked to upgrade, while its answer is awaited. */
  private upgradeReq: Request | null = null;
  /** Client bytes past MAX_UPGRADE_HELD came while the upgrade was undecided. */
  private upgradeOverflow = false;

  constructor(
    private readonly flow: FlowInfo,
    private readonly emit: (e: HttpExchange) => void,
    private readonly counters: Http1Counters,
    private readonly opts: Http1Options = DEFAULT_HTTP1_OPTIONS,
  ) {
    this.probeLower = opts.probeHeader.toLowerCase();
    this.req = new Half(LLHTTP_TYPE_REQUEST, this.requestHandler());
    this.resp = new Half(LLHTTP_TYPE_RESPONSE, this.responseHandler());
  }

  onData(fromClient: boolean, data: Uint8Array, timeMs: number): void {
    this.nowMs = timeMs;
    const half = fromClient ? this.req : this.resp;
    if (half.state === 'stopped') return;
    if (half.state === 'upgrading') { this.holdForUpgrade(data); return; }
    if (half.state === 'resync') {
      const found = this.findStart(half, data, fromClient ? REQUEST_START : RESPONSE_START);
      if (found === null) return;
      data = found;
    }
    let r = half.parser.execute(data);
    // A response refused an upgrade: the response parser paused so the client's held requests
    // are parsed (and queued) before the responses that follow are paired.
    while (r.kind === 'paused') {
      this.resumeAfterRefusedUpgrade();
      half.parser.resume();
      r = half.parser.execute(r.rest);
    }
    this.result(half, r);
  }

  private holdForUpgrade(data: Uint8Array): void {
    const room = MAX_UPGRADE_HELD - this.req.held.length;
    if (data.length > room) this.upgradeOverflow = true;
    if (room > 0) this.req.held = Buffer.concat([this.req.held, data.subarray(0, room)]);
  }

  private resumeAfterRefusedUpgrade(): void {
    const held = this.req.held;
    this.req.held = Buffer.alloc(0);
    this.req.parser.resumeAfterUpgrade();
    if (this.upgradeOverflow) {
      this.upgradeOverflow = false;
      this.req.parser.reset();
      this.req.state = 'resync';
      return;
    }
    this.req.state = 'parse';
    if (held.length > 0) this.result(this.req, this.req.parser.execute(held));
  }

  onGap(fromClient: boolean, bytes: number | null, timeMs: number): void {
    this.nowMs = timeMs;
    const half = fromClient ? this.req : this.resp;
    if (half.state === 'stopped') return;
    if (bytes !== null) {
      if (fromClient) {
        if (this.curReq) this.curReq.error = 'gap';
      } else {
        // The head request's response was (at least partly) in the hole.
        const head = this.queue.shift();
        if (head) this.finish(head, this.curResp?.headersDone ? this.curResp : null, 'gap');
      }
    }
    if (fromClient) this.curReq = null; else this.curResp = null;
    half.parser.reset();
    half.state = 'resync';
    half.held = Buffer.alloc(0);
  }

  onFin(fromClient: boolean, timeMs: number): void {
    this.nowMs = timeMs;
    const half = fromClient ? this.req : this.resp;
    // A body delimited by the close ends here; a message cut short is an error llhttp reports.
    if (half.state === 'parse') this.result(half, half.parser.finish());
    if (half.state === 'parse') half.state = 'stopped';
  }

  onClose(reason: CloseReason, timeMs: number): void {
    if (this.closed) return;
    this.closed = true;
    this.nowMs = timeMs;
    // Only the oldest request can have a response under way; its end never came.
    const started = this.curResp && !this.curResp.interim && !this.curResp.orphan ? this.curResp : null;
    const resp = started?.headersDone ? started : null;
    this.queue.splice(0).forEach((r, i) => {
      const error = reason === 'reset' ? 'reset' : r.error ?? (i === 0 && started ? 'gap' : 'no_response');
      this.finish(r, i === 0 ? resp : null, error);
    });
    this.curResp = null;
    this.req.parser.free();
    this.resp.parser.free();
  }

  private result(half: Half, r: ExecuteResult): void {
    if (r.kind === 'ok' || half.state !== 'parse') return;
    if (r.kind === 'upgrade') {
      // CONNECT or Upgrade: what follows may be another protocol. The request side holds its
      // bytes until the response decides; once the response switches, the connection is opaque.
      if (half === this.resp) {
        this.counters.upgrades++;
        this.req.state = 'stopped';
        this.resp.state = 'stopped';
        this.req.held = Buffer.alloc(0);
        return;
      }
      half.state = 'upgrading';
      this.upgradeReq = this.queue[this.queue.length - 1] ?? null;
      this.req.held = Buffer.alloc(0);
      this.holdForUpgrade(r.rest);
      return;
    }
    this.counters.parseErrors++;
    this.req.state = 'stopped';
    this.resp.state = 'stopped';
    // Bytes that never made a request line (TLS, garbage) are a counted error, not an exchange.
    for (const q of this.queue.splice(0)) if (q.path !== '') this.finish(q, null, 'parse_error');
  }

  /** Skips to the first start line in the held bytes plus `data`; null while none is found. */
  private findStart(half: Half, data: Uint8Array, start: RegExp): Buffer | null {
    const buf = half.held.length ? Buffer.concat([half.held, data]) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const m = start.exec(buf.toString('latin1'));
    if (!m) {
      const keep = Math.min(RESYNC_TAIL, buf.length);
      this.counters.resyncSkippedBytes += buf.length - keep;
      half.held = Buffer.from(buf.subarray(buf.length - keep));
      return null;
    }
    const at = m.index;
    this.counters.resyncSkippedBytes += at;
    this.counters.resyncs++;
    half.held = Buffer.alloc(0);
    half.state = 'parse';
    return buf.subarray(at);
  }

  private headerBytes(half: Half, len: number): number {
    half.headerBytes += len;
    if (half.headerBytes > this.opts.maxHeaderBytes) { this.counters.headerTooLarge++; return -1; }
    return 0;
  }

  private requestHandler(): LlhttpHandler {
    const half = () => this.req;
    return {
      onMessageBegin: () => {
        const r: Request = { startMs: this.nowMs, endMs: -1, method: '', host: null, path: '', probe: null, bodyBytes: 0, error: null };
        this.counters.requests++;
        this.curReq = r;
        // A client that pipelines without answers must not grow us without bound.
        if (this.queue.length >= MAX_PENDING_REQUESTS) this.finish(this.queue.shift()!, null, 'no_response');
        this.queue.push(r);
        half().headerBytes = 0;
        this.field = ''; this.fieldDone = false; this.capture = null; this.value = '';
        return 0;
      },
      onUrl: (m, at, len) => {
        const r = this.curReq;
        if (r && r.path === '') r.method = this.req.parser.methodName; // known once the target starts
        if (r && r.path.length < this.opts.maxHeaderBytes) r.path += m.toString('latin1', at, at + len);
        return this.headerBytes(half(), len);
      },
      onStatus: () => 0,
      onHeaderField: (m, at, len) => {
        if (this.fieldDone) this.endHeader();
        if (this.field.length < 64) this.field += m.toString('latin1', at, at + Math.min(len, 64));
        return this.headerBytes(half(), len);
      },
      onHeaderValue: (m, at, len) => {
        if (!this.fieldDone) {
          this.fieldDone = true;
          const f = this.field.toLowerCase();
          this.capture = f === 'host' ? 'host' : f === this.probeLower ? 'probe' : null;
        }
        if (this.capture && this.value.length < MAX_KEPT_VALUE) this.value += m.toString('latin1', at, at + Math.min(len, MAX_KEPT_VALUE));
        return this.headerBytes(half(), len);
      },
      onHeadersComplete: () => {
        if (this.fieldDone) this.endHeader();
        return 0;
      },
      onBody: (len) => { if (this.curReq) this.curReq.bodyBytes += len; return 0; },
      onMessageComplete: () => {
        if (this.curReq) this.curReq.endMs = this.nowMs;
        this.curReq = null;
        return 0;
      },
    };
  }

  private endHeader(): void {
    const r = this.curReq;
    if (r && this.capture === 'host' && r.host === null) r.host = this.value.trim();
    if (r && this.capture === 'probe' && r.probe === null) r.probe = this.value.trim();
    this.field = ''; this.fieldDone = false; this.capture = null; this.value = '';
  }

  private responseHandler(): LlhttpHandler {
    const count = (_m: Buffer, _at: number, len: number) => this.headerBytes(this.resp, len);
    return {
      onMessageBegin: () => {
        // A server cannot answer a request before it begins: such a response is not the head's.
        const head = this.queue[0];
        this.curResp = { startMs: this.nowMs, status: 0, bodyBytes: 0, interim: false, headersDone: false, orphan: !head || head.startMs > this.nowMs };
        this.resp.headerBytes = 0;
        return 0;
      },
      onUrl: () => 0,
      onStatus: count,
      onHeaderField: count,
      onHeaderValue: count,
      onHeadersComplete: (status) => {
        const r = this.curResp!;
        r.status = status;
        r.headersDone = true;
        // 1xx other than 101 is a preface to the real response (100 Continue, 103 Early Hints).
        r.interim = status >= 100 && status < 200 && status !== 101;
        const head = r.orphan ? undefined : this.queue[0];
        if (head?.method === 'HEAD') return SKIP_BODY;
        if (head?.method === 'CONNECT' && status >= 200 && status < 300) return UPGRADE_AFTER_HEADERS;
        return 0;
      },
      onBody: (len) => { if (this.curResp) this.curResp.bodyBytes += len; return 0; },
      onMessageComplete: () => {
        const r = this.curResp;
        this.curResp = null;
        if (!r || r.interim) return 0;
        this.counters.responses++;
        if (r.orphan) { this.counters.unpairedResponses++; return 0; }
        const head = this.queue.shift()!;
        this.finish(head, r, head.error);
        if (head === this.upgradeReq) {
          this.upgradeReq = null;
          const switched = r.status === 101 || (head.method === 'CONNECT' && r.status >= 200 && r.status < 300);
          // Refused (or ignored, as servers without h2c do): the client's next requests are HTTP.
          if (!switched && this.req.state === 'upgrading') return PAUSE;
        }
        return 0;
      },
    };
  }

  private finish(r: Request, resp: Response | null, error: ExchangeError | null): void {
    if (r === this.curReq) this.curReq = null;
    this.emit({
      time: new Date(r.startMs).toISOString(),
      client: this.flow.client,
      server: this.flow.server,
      method: r.method || 'UNKNOWN',
      host: r.host,
      path: r.path,
      status: resp ? resp.status : null,
      req_bytes: r.bodyBytes,
      resp_bytes: resp ? resp.bodyBytes : 0,
      latency_ms: resp && r.endMs >= 0 ? Math.round((resp.startMs - r.endMs) * 1000) / 1000 : null,
      vlan: this.flow.vlan,
      tunnel: this.flow.tunnel,
      probe: r.probe,
      error,
    });
  }
}
