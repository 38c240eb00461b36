// The agent side: a Sink that ships a command's --json records to a collector, beside its local
// output. Records are cut into batches by count, bytes and time; each batch has an id
// RUN-SEQUENCE (RUN is new per process) that it keeps through every retry, so the collector
// stores it once however many times it arrives. While the collector is away, batches wait in a
// buffer of bounded bytes and are retried with backoff; what does not fit is dropped and counted.
// Where a batch goes is a BatchTransport: HTTP to one collector (here), or a NATS JetStream stream
// (bus/publisher.ts); batching, buffering and retrying are the same for both.
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { TcplensError } from '../errors.js';
import type { Sink } from '../sinks/sink.js';
import { AGENT_NAME } from './schema.js';

export interface ShipperOptions {
  /** the collector's base URL, e.g. http://127.0.0.1:7070 (HTTP, when no transport is given) */
  url?: string;
  /** where batches go instead of a collector's HTTP API (the NATS bus) */
  transport?: BatchTransport;
  capability: string;
  agentName: string;
  /** tcplens' version, reported with every batch (GET /v1/agents shows it) */
  version?: string;
  token: string | null;
  maxBatchEvents: number;
  maxBatchBytes: number;
  /** a batch with anything in it goes out at the latest this long after its first record */
  flushMs: number;
  /** bytes of unacknowledged records held at most (sealed batches and the one being filled) */
  bufferBytes: number;
  retryMinMs: number;
  retryMaxMs: number;
  requestTimeoutMs: number;
  /** progress and trouble, for the person running the agent */
  notice: (message: string) => void;
}

export const SHIPPER_DEFAULTS = {
  maxBatchEvents: 5000, maxBatchBytes: 1024 * 1024, flushMs: 1000, bufferBytes: 64 * 1024 * 1024,
  retryMinMs: 100, retryMaxMs: 10_000, requestTimeoutMs: 15_000,
};

export interface ShipperStats {
  /** events the collector acknowledged (stored, or known from an earlier try) */
  acked: number;
  batches: number;
  duplicates: number;
  /** events dropped because the buffer was full */
  dropped: number;
  /** events in batches the collector refused for good (4xx): retrying would not help */
  rejected: number;
  /** events still unacknowledged when the agent stopped */
  unsent: number;
  retries: number;
}

export interface ShipBatch { id: string; body: string; events: number; bytes: number }

/** What goes with every batch besides its records. */
export interface BatchMeta {
  agent: string;
  capability: string;
  version?: string;
  /** records dropped so far in this run, so the collector learns of drops with the next batch that gets through */
  dropped: number;
}

/** ok: stored (or known already); otherwise retry (the far side is away) or refused for good. */
export type SendAttempt = { ok: true; duplicate: boolean } | { ok: false; retry: boolean; why: string };

/** One way to deliver a batch. send() never throws: trouble is an answer. */
export interface BatchTransport {
  /** what the shipper reports to, for notices and the summary: "collector" or "bus" */
  readonly kind: string;
  /** e.g. "collector http://127.0.0.1:7070" */
  readonly where: string;
  send(b: ShipBatch, meta: BatchMeta): Promise<SendAttempt>;
  close(): void | Promise<void>;
}


export function defaultAgentName(): string {
  const h = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return h || 'agent';
}

export function checkAgentName(name: string): string {
  if (!AGENT_NAME.test(name)) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--agent-name ${name}: expected letters, digits, '.', '_' or '-' (at most 64)`, 'e.g. --agent-name gw-1');
  }
  return name;
}

export function checkCollectorUrl(url: string): URL {
  let u: URL;
  try { u = new URL(url); } catch { u = new URL('invalid:'); }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash || u.username) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--collector ${url}: expected http://HOST:PORT or https://HOST:PORT`, 'e.g. --collector http://127.0.0.1:7070');
  }
  return u;
}

/** Exponential backoff with jitter: attempt 0 waits about min, then doubling up to max. */
export function backoffMs(attempt: number, min: number, max: number, random = Math.random): number {
  const base = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.5 + random() / 2));
}

/** Cuts records into batches; pure, so batching rules are tested without a network. */
export class Batcher {
  private lines: string[] = [];
  private bytes = 0;
  private seq = 0;

  constructor(readonly run: string, private readonly maxEvents: number, private readonly maxBytes: number) {}

  get pendingBytes(): number { return this.bytes; }
  get pendingEvents(): number { return this.lines.length; }

  /** Adds one line; returns a sealed batch when this line filled one. */
  add(line: string, bytes: number): ShipBatch | null {
    this.lines.push(line);
    this.bytes += bytes;
    return this.lines.length >= this.maxEvents || this.bytes >= this.maxBytes ? this.seal() : null;
  }

  seal(): ShipBatch | null {
    if (!this.lines.length) return null;
    const b = { id: `${this.run}-${++this.seq}`, body: this.lines.join(''), events: this.lines.length, bytes: this.bytes };
    this.lines = [];
    this.bytes = 0;
    return b;
  }
}

export class CollectorShipper<R> implements Sink<R> {
  readonly run = `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
  private readonly batcher: Batcher;
  private readonly queue: ShipBatch[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private pumping: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private outage = false;
  private droppedNoticed = false;
  readonly transport: BatchTransport;
  readonly stats: ShipperStats = { acked: 0, batches: 0, duplicates: 0, dropped: 0, rejected: 0, unsent: 0, retries: 0 };

  constructor(private readonly o: ShipperOptions) {
    checkAgentName(o.agentName);
    this.transport = o.transport ?? new HttpTransport(o.url ?? '', o.token, o.requestTimeoutMs);
    this.batcher = new Batcher(this.run, o.maxBatchEvents, o.maxBatchBytes);
  }

  write(record: R): void {
    if (this.stopping) return;
    const line = `${JSON.stringify(record)}\n`;
    const bytes = Buffer.byteLength(line);
    if (this.queuedBytes + this.batcher.pendingBytes + bytes > this.o.bufferBytes) {
      this.stats.dropped++;
      if (!this.droppedNoticed) {
        this.droppedNoticed = true;
        this.o.notice(`${this.transport.kind} buffer full (${this.o.bufferBytes} bytes): dropping records until it drains; the count is in the final summary`);
      }
      return;
    }
    const sealed = this.batcher.add(line, bytes);
    if (sealed) this.enqueue(sealed);
    else if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = null; this.flush(); }, this.o.flushMs);
      this.timer.unref();
    }
  }

  /** Seals what is being filled and sends it now. */
  flush(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    const b = this.batcher.seal();
    if (b) this.enqueue(b);
  }

  /** Sink.close: seal the last batch; drain() waits for it. */
  close(): void {
    this.flush();
  }

  /** Sends what is left, waiting at most timeoutMs, then stops; the rest is counted as unsent. */
  async drain(timeoutMs: number): Promise<ShipperStats> {
    this.flush();
    const deadline = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([this.idle(), deadline]);
    this.stopping = true;
    this.wake?.();
    this.stats.unsent = this.queue.reduce((n, b) => n + b.events, 0);
    await this.transport.close();
    return { ...this.stats };
  }

  private async idle(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  private enqueue(b: ShipBatch): void {
    this.queue.push(b);
    this.queuedBytes += b.bytes;
    if (!this.pumping) this.pumping = this.pump().finally(() => { this.pumping = null; });
  }

  private async pump(): Promise<void> {
    let attempt = 0;
    while (this.queue.length && !this.stopping) {
      const b = this.queue[0];
      const r = await this.transport.send(b, { agent: this.o.agentName, capability: this.o.capability, version: this.o.version, dropped: this.stats.dropped });
      if (!r.ok && r.retry) {
        this.stats.retries++;
        if (!this.outage) {
          this.outage = true;
          this.o.notice(`${this.transport.where}: ${r.why}; holding batches and retrying`);
        }
        await this.sleep(backoffMs(attempt++, this.o.retryMinMs, this.o.retryMaxMs));
        continue;
      }
      attempt = 0;
      if (this.outage) {
        this.outage = false;
        this.o.notice(`${this.transport.where}: reachable again`);
      }
      this.queue.shift();
      this.queuedBytes -= b.bytes;
      if (r.ok) {
        this.stats.acked += b.events;
        this.stats.batches++;
        if (r.duplicate) this.stats.duplicates++;
      } else {
        this.stats.rejected += b.events;
        this.o.notice(`${this.transport.kind} refused batch ${b.id} (${b.events} events): ${r.why}`);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(t); this.wake = null; resolve(); };
    });
  }
}

/** Batches as POST /v1/events to one collector. */
class HttpTransport implements BatchTransport {
  readonly kind = 'collector';
  readonly where: string;
  private readonly base: URL;
  private readonly agent: HttpAgent;

  constructor(url: string, private readonly token: string | null, private readonly timeoutMs: number) {
    this.base = checkCollectorUrl(url);
    this.where = `collector ${this.base.origin}`;
    this.agent = this.base.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  }

  close(): void {
    this.agent.destroy();
  }

  send(b: ShipBatch, meta: BatchMeta): Promise<SendAttempt> {
    const url = new URL('/v1/events', this.base);
    url.search = new URLSearchParams({ agent: meta.agent, capability: meta.capability, batch: b.id,
      ...(meta.version && { version: meta.version }), dropped: String(meta.dropped) }).toString();
    const body = Buffer.from(b.body);
    const request = this.base.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<SendAttempt>((resolve) => {
      const req = request(url, {
        method: 'POST', agent: this.agent, timeout: this.timeoutMs,
        headers: { 'content-type': 'application/x-ndjson', 'content-length': body.length, ...(this.token && { authorization: `Bearer ${this.token}` }) },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { if (text.length < 4096) text += d; });
        res.on('error', (e) => resolve({ ok: false, retry: true, why: e.message }));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status === 200) {
            let duplicate = false;
            try { duplicate = (JSON.parse(text) as { duplicate?: boolean }).duplicate === true; } catch { /* an ack is an ack */ }
            return resolve({ ok: true, duplicate });
          }
          let why = `HTTP ${status}`;
          try {
            const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
            if (e?.code) why = `${e.code}: ${e.message ?? ''}`;
          } catch { /* not our JSON: a proxy in between */ }
          // 408, 429 and 5xx pass; any other 4xx is about the batch itself and would fail again.
          resolve({ ok: false, retry: status >= 500 || status === 408 || status === 429 || status < 400, why });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer in ${this.timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, retry: true, why: e.code ?? e.message }));
      req.end(body);
    });
  }
}
