// The flags every agent command shares for shipping its records to a collector, and the shipper
// they configure. The command's own output is untouched: the shipper is a second sink. It ships
// to one collector over HTTP (--collector) or to a NATS JetStream stream (--bus), not both: a
// batch has one way into the fleet's store, and the bus's collectors are where it goes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TcplensError } from '../errors.js';
import { checkAgentName, CollectorShipper, defaultAgentName, SHIPPER_DEFAULTS, type ShipperStats } from '../collector/agent.js';
import { BUS_MAX_BATCH_BYTES, BusPublisher } from '../collector/bus/publisher.js';
import { checkStreamName, DEFAULT_STREAM, parseBusUrls } from '../collector/bus/names.js';
import { repoRoot } from '../kernel/paths.js';
import type { FlagTable } from './flags.js';

export const collectorAgentFlags = {
  collector: { type: 'string', arg: 'URL', help: 'also ship every record to this tcplens collector, e.g. http://127.0.0.1:7070 (local output unchanged)' },
  bus: { type: 'string', arg: 'URL[,URL..]', help: 'instead of --collector: publish every record to this NATS JetStream bus, e.g. nats://10.0.0.5:4222 (collectors with --bus store them)' },
  stream: { type: 'string', arg: 'NAME', help: `with --bus: the JetStream stream (default ${DEFAULT_STREAM})` },
  'token-file': { type: 'string', arg: 'FILE', help: 'file holding the collector\'s bearer token' },
  'agent-name': { type: 'string', arg: 'NAME', help: 'name this agent reports to the collector (default: the host name)' },
  'collector-buffer': { type: 'string', arg: 'MB', default: '64', help: 'records held while the collector (or bus) is away, in MiB (default 64); beyond that they are dropped and counted' },
} satisfies FlagTable;

type AgentFlagValues = { collector?: string; bus?: string; stream?: string; 'token-file'?: string; 'agent-name'?: string; 'collector-buffer'?: string };

/** tcplens' own version, from its package.json (null if unreadable: the agent then reports none). */
export function tcplensVersion(): string | null {
  try {
    return (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

export function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--token-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'give a readable file holding the token on one line');
  }
  if (text.length < 16 || /\s/.test(text)) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--token-file ${file}: the token must be one word of at least 16 characters`, 'e.g. openssl rand -hex 32 > FILE');
  }
  return text;
}

/** A shipper as the flags ask for, or null without --collector or --bus (then the other flags must be absent). */
export function shipperFromFlags<R>(v: AgentFlagValues, capability: string): CollectorShipper<R> | null {
  if (v.collector && v.bus) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--collector and --bus: give one', 'with a bus, the collectors consuming it store the records: --bus URL alone');
  }
  if (v.stream !== undefined && !v.bus) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--stream only means something with --bus', 'add --bus nats://HOST:4222');
  if (v['token-file'] && !v.collector) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--token-file only means something with --collector', v.bus ? 'the bus is reached without a token (secure it with NATS\' own accounts and TLS in front)' : 'add --collector URL');
  }
  if (!v.collector && !v.bus) {
    if (v['agent-name']) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--agent-name only means something with --collector or --bus', 'add --collector URL or --bus URL');
    return null;
  }
  const mb = v['collector-buffer'] ?? '64';
  if (!/^\d{1,5}$/.test(mb) || Number(mb) < 1 || Number(mb) > 16384) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--collector-buffer ${mb}: expected MiB from 1 to 16384`, 'e.g. --collector-buffer 64');
  }
  const agentName = checkAgentName(v['agent-name'] ?? defaultAgentName());
  const bus = v.bus ? { servers: parseBusUrls(v.bus), stream: checkStreamName(v.stream ?? DEFAULT_STREAM) } : null;
  return new CollectorShipper<R>({
    ...SHIPPER_DEFAULTS,
    ...(bus ? { transport: new BusPublisher({ ...bus, agentName, timeoutMs: 5000 }), maxBatchBytes: BUS_MAX_BATCH_BYTES } : { url: v.collector }),
    capability,
    agentName,
    version: tcplensVersion() ?? undefined,
    token: v['token-file'] ? readToken(v['token-file']) : null,
    bufferBytes: Number(mb) * 1024 * 1024,
    notice: (m) => process.stderr.write(`tcplens: ${m}\n`),
  });
}

function shipperSummary(kind: string, s: ShipperStats): string {
  return `tcplens: ${kind}: ${s.acked} records acknowledged in ${s.batches} batches (${s.duplicates} already stored), ` +
    `${s.dropped} dropped (buffer full), ${s.rejected} refused, ${s.unsent} unsent at exit, ${s.retries} retries`;
}

/** At a command's end: what is left goes out (a collector that is away gets a few seconds), then the shipping summary. */
export async function finishShipper(shipper: CollectorShipper<unknown> | null): Promise<void> {
  if (shipper) process.stderr.write(`${shipperSummary(shipper.transport.kind, await shipper.drain(5000))}\n`);
}
