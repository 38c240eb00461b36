// The flags every agent command shares for shipping its records to a collector, and the shipper
// they configure. The command's own output is untouched: the shipper is a second sink.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TcplensError } from '../errors.js';
import { checkAgentName, CollectorShipper, defaultAgentName, SHIPPER_DEFAULTS, type ShipperStats } from '../collector/agent.js';
import { repoRoot } from '../kernel/paths.js';
import type { FlagTable } from './flags.js';

export const collectorAgentFlags = {
  collector: { type: 'string', arg: 'URL', help: 'also ship every record to this tcplens collector, e.g. http://127.0.0.1:7070 (local output unchanged)' },
  'token-file': { type: 'string', arg: 'FILE', help: 'file holding the collector\'s bearer token' },
  'agent-name': { type: 'string', arg: 'NAME', help: 'name this agent reports to the collector (default: the host name)' },
  'collector-buffer': { type: 'string', arg: 'MB', default: '64', help: 'records held while the collector is away, in MiB (default 64); beyond that they are dropped and counted' },
} satisfies FlagTable;

type AgentFlagValues = { collector?: string; 'token-file'?: string; 'agent-name'?: string; 'collector-buffer'?: string };

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

/** A shipper as the flags ask for, or null without --collector (then the other flags must be absent). */
export function shipperFromFlags<R>(v: AgentFlagValues, capability: string): CollectorShipper<R> | null {
  if (!v.collector) {
    if (v['token-file'] || v['agent-name']) {
      throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--token-file and --agent-name only mean something with --collector', 'add --collector URL');
    }
    return null;
  }
  const mb = v['collector-buffer'] ?? '64';
  if (!/^\d{1,5}$/.test(mb) || Number(mb) < 1 || Number(mb) > 16384) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--collector-buffer ${mb}: expected MiB from 1 to 16384`, 'e.g. --collector-buffer 64');
  }
  return new CollectorShipper<R>({
    ...SHIPPER_DEFAULTS,
    url: v.collector,
    capability,
    agentName: checkAgentName(v['agent-name'] ?? defaultAgentName()),
    version: tcplensVersion() ?? undefined,
    token: v['token-file'] ? readToken(v['token-file']) : null,
    bufferBytes: Number(mb) * 1024 * 1024,
    notice: (m) => process.stderr.write(`tcplens: ${m}\n`),
  });
}

function shipperSummary(s: ShipperStats): string {
  return `tcplens: collector: ${s.acked} records acknowledged in ${s.batches} batches (${s.duplicates} already stored), ` +
    `${s.dropped} dropped (buffer full), ${s.rejected} refused, ${s.unsent} unsent at exit, ${s.retries} retries`;
}

/** At a command's end: what is left goes out (a collector that is away gets a few seconds), then the shipping summary. */
export async function finishShipper(shipper: CollectorShipper<unknown> | null): Promise<void> {
  if (shipper) process.stderr.write(`${shipperSummary(await shipper.drain(5000))}\n`);
}
