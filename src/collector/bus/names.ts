// The pure rules of the NATS bus: which servers --bus names, what a stream may be called, the
// subject a batch is published on and the headers it carries. Agents and collectors both use
// these, so the two sides agree on them by construction.
import { TcplensError } from '../../errors.js';

export const DEFAULT_STREAM = 'tcplens';
/** The one durable pull consumer every collector of a stream shares (each batch goes to one of them). */
export const DURABLE = 'tcplens-collectors';
export const DEFAULT_PORT = 4222;

/** Headers of a published batch; Nats-Msg-Id is JetStream's own (its duplicate window drops a re-publish). */
export const HEADER = {
  agent: 'Tcplens-Agent', capability: 'Tcplens-Capability', batch: 'Tcplens-Batch',
  version: 'Tcplens-Version', dropped: 'Tcplens-Dropped',
} as const;

const HOST = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$/;

/** --bus nats://host:4222[,nats://host2:4222...] -> the server URLs, port 4222 when none is given. */
export function parseBusUrls(text: string): string[] {
  const bad = (why: string) => new TcplensError('TCPLENS_ERR_BUS_URL', `--bus ${text.slice(0, 200)}: ${why}`,
    'e.g. --bus nats://127.0.0.1:4222 or --bus nats://n1:4222,nats://n2:4222,nats://n3:4222');
  const parts = text.split(',').map((p) => p.trim());
  if (!text.trim() || parts.some((p) => !p)) throw bad('expected one or more nats://HOST:PORT, separated by commas');
  const servers = parts.map((p) => {
    const m = /^nats:\/\/(\[[^\]]*\]|[^:/?#@[\]]*)(?::(\d{1,5}))?\/?$/.exec(p);
    if (!m) throw bad(`${p.slice(0, 80)} is not nats://HOST:PORT (no user, path or query)`);
    const port = m[2] === undefined ? DEFAULT_PORT : Number(m[2]);
    if (!HOST.test(m[1])) throw bad(`${p.slice(0, 80)}: not a host name or address`);
    if (port < 1 || port > 65535) throw bad(`${p.slice(0, 80)}: port ${m[2]} is out of range`);
    return `nats://${m[1]}:${port}`;
  });
  return [...new Set(servers)];
}

/** A JetStream stream name that is also one subject token (the stream's subjects are NAME.>). */
export function checkStreamName(name: string): string {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--stream ${name.slice(0, 40)}: expected letters, digits, '_' or '-' (at most 32)`, 'e.g. --stream tcplens');
  }
  return name;
}

/** Every subject of a stream's batches: STREAM.CAPABILITY.AGENT (agent names may hold dots, so '>'). */
export const streamSubjects = (stream: string) => `${stream}.>`;

export function batchSubject(stream: string, capability: string, agent: string): string {
  return `${stream}.${capability}.${agent}`;
}

/** The message id: the store's own batch key (agent, batch id), so one id means one batch fleet-wide. */
export function batchMsgId(agent: string, batch: string): string {
  return `${agent}/${batch}`;
}

/** Replicas for a new stream: one per server of the cluster, at most 3 (JetStream's limit is 5; 3 is its advice). */
export function replicasFor(clusterSize: number): number {
  return Math.max(1, Math.min(3, clusterSize));
}
