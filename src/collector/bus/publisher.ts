// The agent's side of the bus: a BatchTransport that publishes each batch to the JetStream
// stream and counts it delivered once the stream acknowledged it (stored on a quorum of its
// replicas). The message id is (agent, batch id): a re-publish after a lost acknowledgement falls
// in the stream's duplicate window and is not stored again (and the store dedups past it).
import { headers } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { BatchMeta, BatchTransport, SendAttempt, ShipBatch } from '../agent.js';
import { BusConnection, why } from './connection.js';
import { batchMsgId, batchSubject, HEADER } from './names.js';

export interface BusPublisherOptions {
  servers: string[];
  stream: string;
  agentName: string;
  /** how long one publish waits for the stream's acknowledgement */
  timeoutMs: number;
}

/** Batches on the bus stay below NATS' default max_payload (1 MiB) with a 256 KiB line on top and the headers. */
export const BUS_MAX_BATCH_BYTES = 512 * 1024;

export class BusPublisher implements BatchTransport {
  readonly kind = 'bus';
  readonly where: string;
  private readonly conn: BusConnection;
  private js: JetStreamClient | null = null;

  constructor(private readonly o: BusPublisherOptions) {
    // The shipper says when the bus is away and when it is back; the connection keeps quiet.
    this.conn = new BusConnection({ servers: o.servers, name: `tcplens agent ${o.agentName}`, notice: null });
    this.where = `${this.conn.where} (stream ${o.stream})`;
  }

  async send(b: ShipBatch, meta: BatchMeta): Promise<SendAttempt> {
    const nc = await this.conn.ready(this.o.timeoutMs);
    if (!nc) return { ok: false, retry: true, why: 'not connected' };
    this.js ??= jetstream(nc, { timeout: this.o.timeoutMs });
    const h = headers();
    h.set(HEADER.agent, meta.agent);
    h.set(HEADER.capability, meta.capability);
    h.set(HEADER.batch, b.id);
    if (meta.version) h.set(HEADER.version, meta.version);
    h.set(HEADER.dropped, String(meta.dropped));
    try {
      const ack = await this.js.publish(batchSubject(this.o.stream, meta.capability, meta.agent), b.body,
        { msgID: batchMsgId(meta.agent, b.id), headers: h, expect: { streamName: this.o.stream }, timeout: this.o.timeoutMs });
      return { ok: true, duplicate: ack.duplicate };
    } catch (e) {
      const text = why(e);
      // Too big for this server's max_payload: it would fail the same way every time.
      if (/max.?payload/i.test(text)) return { ok: false, retry: false, why: `TCPLENS_ERR_BUS_STREAM: ${text}` };
      // No stream yet (no collector has created it), no responders in an election, a timeout: all pass.
      return { ok: false, retry: true, why: /no responders/i.test(text) ? `no stream ${this.o.stream} answers (${text}); a tcplens collector --bus creates it` : text };
    }
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}
