// The stream and the shared consumer a collector needs, created if missing and checked if there:
// a stream of file storage whose subjects cover STREAM.> (work-queue retention: a batch is gone
// from the stream once a collector acknowledged it, so the stream is a buffer, not an archive),
// and ONE durable pull consumer with explicit acks that every collector of the stream shares.
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type ConsumerConfig, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { TcplensError } from '../../errors.js';
import { DURABLE, replicasFor, streamSubjects } from './names.js';

const NS = 1_000_000;
/** A re-publish within this long of the first is dropped by the stream (agents retry within seconds). */
export const DUPLICATE_WINDOW_MS = 120_000;

export function streamConfig(stream: string, clusterSize: number): Partial<StreamConfig> & { name: string } {
  return {
    name: stream, subjects: [streamSubjects(stream)], storage: StorageType.File, retention: RetentionPolicy.Workqueue,
    num_replicas: replicasFor(clusterSize), duplicate_window: DUPLICATE_WINDOW_MS * NS,
  };
}

export function consumerConfig(stream: string, ackWaitMs: number): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: DURABLE, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: ackWaitMs * NS,
    filter_subject: streamSubjects(stream), max_ack_pending: 4096, max_deliver: -1,
  };
}

/** Why an existing stream cannot carry tcplens batches, or null if it can. Pure, so it is unit-tested. */
export function streamIncompatibility(stream: string, c: Pick<StreamConfig, 'subjects' | 'retention' | 'storage' | 'duplicate_window'>): string | null {
  const want = streamSubjects(stream);
  if (!(c.subjects ?? []).includes(want)) return `its subjects are ${JSON.stringify(c.subjects ?? [])}, not ${want}`;
  if (c.retention === RetentionPolicy.Interest) return 'it has interest retention (a batch could be dropped before a collector acknowledged it)';
  if (c.storage !== StorageType.File) return `it has ${c.storage} storage (a server restart would lose what collectors did not take yet)`;
  if (!c.duplicate_window) return 'it has no duplicate window (a re-published batch would be stored twice in it)';
  return null;
}

export function consumerIncompatibility(stream: string, c: Pick<ConsumerConfig, 'ack_policy' | 'filter_subject' | 'deliver_subject'>): string | null {
  if (c.deliver_subject) return 'it is a push consumer (tcplens collectors pull)';
  if (c.ack_policy !== AckPolicy.Explicit) return `its ack policy is ${c.ack_policy}, not explicit (a batch would count as handled before it is stored)`;
  if (c.filter_subject && c.filter_subject !== streamSubjects(stream)) return `it takes only ${c.filter_subject}`;
  return null;
}

const incompatible = (what: string, why: string, hint: string) =>
  new TcplensError('TCPLENS_ERR_BUS_STREAM', `${what}: ${why}`, hint);

function notFound(e: unknown, code: number): boolean {
  return (e as { code?: unknown })?.code === code || (e as { apiError?: () => { err_code?: number } }).apiError?.().err_code === code;
}

/** Creates the stream if missing (two collectors racing both get the same one), else checks it. */
export async function ensureStream(jsm: JetStreamManager, stream: string, clusterSize: number): Promise<'created' | 'found'> {
  const hint = `use another --stream NAME, or remove the stream (nats stream rm ${stream}) so a collector creates it anew`;
  try {
    const info = await jsm.streams.info(stream);
    const why = streamIncompatibility(stream, info.config);
    if (why) throw incompatible(`stream ${stream}`, why, hint);
    return 'found';
  } catch (e) {
    if (!notFound(e, 10059)) throw e;
  }
  try {
    await jsm.streams.add(streamConfig(stream, clusterSize));
    return 'created';
  } catch (e) {
    // Another collector created it meanwhile (with its own view of the cluster): fine if it fits.
    const info = await jsm.streams.info(stream).catch(() => { throw e; });
    const why = streamIncompatibility(stream, info.config);
    if (why) throw incompatible(`stream ${stream}`, why, hint);
    return 'found';
  }
}

export async function ensureConsumer(jsm: JetStreamManager, stream: string, ackWaitMs: number): Promise<void> {
  const hint = `remove it (nats consumer rm ${stream} ${DURABLE}) so a collector creates it anew`;
  try {
    const info = await jsm.consumers.info(stream, DURABLE);
    const why = consumerIncompatibility(stream, info.config);
    if (why) throw incompatible(`consumer ${DURABLE} of stream ${stream}`, why, hint);
    return;
  } catch (e) {
    if (!notFound(e, 10014)) throw e;
  }
  try {
    await jsm.consumers.add(stream, consumerConfig(stream, ackWaitMs));
  } catch (e) {
    const info = await jsm.consumers.info(stream, DURABLE).catch(() => {
      throw incompatible(`consumer ${DURABLE} of stream ${stream}`, (e as Error).message,
        'a work-queue stream takes one consumer per subject: remove the other one, or use another --stream');
    });
    const why = consumerIncompatibility(stream, info.config);
    if (why) throw incompatible(`consumer ${DURABLE} of stream ${stream}`, why, hint);
  }
}
