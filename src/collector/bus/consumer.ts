// The collector's side of the bus: pulls batches from the one durable consumer that every
// collector of the stream shares (JetStream hands each message to one of them), hands each to
// the store and acknowledges it only once the store has it. A batch the store refuses for good
// (bad records) is terminated, one the store failed on is handed back (nak) for a later try; a
// collector that dies mid-batch never acknowledges it, so after the ack wait JetStream delivers
// it again, to whichever collector pulls next. A redelivered batch that was stored already is a
// duplicate to the store's own (agent, batch) check: stored once either way.
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { isTcplensError, TcplensError } from '../../errors.js';
import type { IngestOutcome } from '../store.js';
import { BusConnection, why } from './connection.js';
import { ensureConsumer, ensureStream } from './stream.js';
import { DURABLE, HEADER } from './names.js';

export interface BusBatch {
  agent: string;
  capability: string;
  batch: string;
  version: string | null;
  dropped: string | null;
  body: Uint8Array;
  /** how many times JetStream delivered it (1: first time) */
  delivery: number;
}

/** Stores one batch; a TcplensError other than TCPLENS_ERR_STORE means the batch is bad for good. */
export type BusBatchHandler = (b: BusBatch) => Promise<IngestOutcome>;

export interface BusConsumerOptions {
  servers: string[];
  stream: string;
  /** a batch not acknowledged this long after delivery goes to another collector */
  ackWaitMs: number;
  /** batches being stored at once (the store commits those waiting together in one transaction) */
  maxInflight: number;
  notice: (message: string) => void;
  /** a fatal trouble (an incompatible stream): the collector stops with it */
  fail: (e: TcplensError) => void;
}

export const BUS_CONSUMER_DEFAULTS = { ackWaitMs: 10_000, maxInflight: 16 };

export interface BusConsumerStats { stored: number; duplicates: number; refused: number; retried: number }

export class BusConsumer {
  readonly stats: BusConsumerStats = { stored: 0, duplicates: 0, refused: 0, retried: 0 };
  private readonly conn: BusConnection;
  private messages: ConsumerMessages | null = null;
  private stopping = false;
  private inflight = 0;
  private waiters: (() => void)[] = [];
  private readonly running: Promise<void>;

  constructor(private readonly o: BusConsumerOptions, private readonly handle: BusBatchHandler) {
    this.conn = new BusConnection({ servers: o.servers, name: 'tcplens collector', notice: o.notice });
    this.running = this.run().catch((e) => {
      if (this.stopping) return;
      o.fail(isTcplensError(e) ? e : new TcplensError('TCPLENS_ERR_BUS_UNREACHABLE', `${this.conn.where}: ${why(e)}`, 'check the NATS servers are up with JetStream enabled (-js)'));
    });
  }

  private async run(): Promise<void> {
    const nc = await this.conn.connected();
    if (!nc) return;
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        await this.setUp(nc);
        attempt = 0;
        await this.pull(nc);
      } catch (e) {
        if (isTcplensError(e) || this.stopping) throw e;
        // No JetStream leader yet (a cluster forming, an election): try again shortly.
        if (attempt === 0) this.o.notice(`${this.conn.where}: stream ${this.o.stream}: ${why(e)}; retrying`);
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(attempt, 5))));
      }
    }
  }

  private async setUp(nc: NatsConnection): Promise<void> {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    // connect_urls: the client URLs of every server of the cluster (this one included).
    const clusterSize = nc.info?.cluster ? Math.max(1, nc.info.connect_urls?.length ?? 1) : 1;
    const made = await ensureStream(jsm, this.o.stream, clusterSize);
    await ensureConsumer(jsm, this.o.stream, this.o.ackWaitMs);
    this.o.notice(`${this.conn.where}: ${made} stream ${this.o.stream}; consuming as ${DURABLE}`);
  }

  private async pull(nc: NatsConnection): Promise<void> {
    const consumer = await jetstream(nc).consumers.get(this.o.stream, DURABLE);
    const messages = this.messages = await consumer.consume({ max_messages: this.o.maxInflight, expires: 5000 });
    if (this.stopping) await messages.close();
    for await (const m of messages) {
      while (this.inflight >= this.o.maxInflight) await new Promise<void>((r) => { this.waiters.push(r); });
      this.inflight++;
      void this.one(m).finally(() => {
        this.inflight--;
        for (const w of this.waiters.splice(0)) w();
      });
    }
    if (!this.stopping) throw new Error('the consumer stopped delivering');
  }

  private async one(m: JsMsg): Promise<void> {
    // Tell JetStream we are on it while the store works (a full store queue can take a while).
    const working = setInterval(() => m.working(), Math.max(1000, this.o.ackWaitMs / 3));
    try {
      const h = m.headers;
      const outcome = await this.handle({
        agent: h?.get(HEADER.agent) ?? '', capability: h?.get(HEADER.capability) ?? '', batch: h?.get(HEADER.batch) ?? '',
        version: h?.get(HEADER.version) || null, dropped: h?.get(HEADER.dropped) || null, body: m.data, delivery: m.info.deliveryCount,
      });
      await m.ackAck();
      if (outcome === 'stored') this.stats.stored++; else this.stats.duplicates++;
    } catch (e) {
      if (isTcplensError(e) && e.code !== 'TCPLENS_ERR_STORE') {
        this.stats.refused++;
        m.term(e.code);
        this.o.notice(`refused batch ${m.headers?.get(HEADER.batch) ?? '?'} of ${m.subject} for good: ${e.code}: ${e.message}`);
      } else {
        // The store failed, or the ack did not make it (a leader change): another try will tell.
        this.stats.retried++;
        try { m.nak(1000); } catch { /* the connection is gone: the ack wait hands it on */ }
      }
    } finally {
      clearInterval(working);
    }
  }

  /** Stops pulling, lets the batches in hand finish (stored and acknowledged), then disconnects. */
  async close(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.messages?.close().catch(() => { /* closing anyway */ });
    while (this.inflight > 0) await new Promise<void>((r) => { this.waiters.push(r); });
    await this.conn.close();
    await this.running;
  }
}
