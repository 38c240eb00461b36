// tcplens hops: hop distance of TCP peers from the TTL / hop limit of their first reply.
import { HopsProber } from '../capabilities/hops/hops.js';
import { runHops, type HopsResult, type HopsRow } from '../capabilities/hops/run.js';
import { requireFeatures, requireKernel } from '../kernel/features.js';
import { TcplensError } from '../errors.js';
import { isStdoutClosed, onCleanup, stopReason, stopSignal } from '../lifecycle.js';
import { checkTargetCount, MAX_TARGETS } from '../net/target.js';
import { makeSink } from '../sinks/index.js';
import type { Column } from '../sinks/table.js';
import { durationFlag, helpText, intFlag, parseFlags, type FlagTable } from './flags.js';
import { collectorAgentFlags, finishShipper, shipperFromFlags } from './collector-agent-flags.js';

export const MAX_COUNT = 100;
export const MAX_CONCURRENCY = 8192;
/** High enough that a few hundred targets that all time out still finish in about one timeout. */
export const DEFAULT_CONCURRENCY = 512;

export const flags = {
  count: { type: 'string', short: 'c', arg: 'N', default: '1', help: `probes per address (1-${MAX_COUNT}); with N > 1 min/median/max are reported` },
  timeout: { type: 'string', short: 't', arg: 'DUR', default: '2s', help: 'give up on a probe with no answer after DUR (default 2s; e.g. 500ms)' },
  concurrency: { type: 'string', arg: 'N', default: String(DEFAULT_CONCURRENCY), help: `probes in flight at once (default ${DEFAULT_CONCURRENCY}, 1-${MAX_CONCURRENCY})` },
  json: { type: 'boolean', help: 'one JSON object per address instead of a table' },
  ...collectorAgentFlags,
  verbose: { type: 'boolean', short: 'v', help: 'show libbpf\'s and the verifier\'s full output' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies FlagTable;

const USAGE = `tcplens hops TARGET... [flags]

Connects to each target with a BPF socket filter on the socket and reports, from the FIRST reply
only (the SYN-ACK, or the RST of a closed port), its TTL / hop limit, the initial TTL it started
from (32, 64, 128 or 255) and so the number of routers in between. Behind a NAT or a FULLNAT
balancer that is the distance to whoever answered (the real server), balancer included.

TARGET: tcp4://host:port, tcp6://host:port, tcp6://[addr]:port, host:port or [addr]:port; a
name is probed at every address it resolves to (tcp4/tcp6: only that family). At most
${MAX_TARGETS} targets per run.

--json fields: target, address, family, status (open|refused|timeout|unreachable|error), ttl,
initial_ttl, hops (null without a reply), connect_ms (to the first reply, timed in the kernel;
to the error for unreachable; null for timeout), error (null when open; a TCPLENS_ERR_ code
otherwise: a refused port has TCPLENS_ERR_REFUSED and still a distance, from its RST). With --count N > 1: ttl, initial_ttl, hops and connect_ms
are the (lower) medians over the replies, status the most frequent one, and each object also has
probes, replies and stats: {ttl, hops, connect_ms: {min, median, max}}.

Exit status: 0 when every address gave a distance, 1 otherwise, 2 for bad usage.`;

interface Row extends HopsRow { spread: boolean }

const range = (s: { min: number; median: number; max: number } | null | undefined) => (s ? `${s.min}/${s.median}/${s.max}` : null);

function columns(spread: boolean): Column<Row>[] {
  return [
    { title: 'TARGET', width: 24, value: (r) => r.result.target },
    { title: 'ADDRESS', width: 24, value: (r) => r.result.address },
    { title: 'STATUS', width: 11, value: (r) => r.result.status },
    { title: 'TTL', width: 4, value: (r) => r.result.ttl },
    { title: 'INIT', width: 4, value: (r) => r.result.initial_ttl },
    spread
      ? { title: 'HOPS min/med/max', width: 16, value: (r) => range(r.result.stats?.hops) }
      : { title: 'HOPS', width: 4, value: (r) => r.result.hops },
    spread
      ? { title: 'CONNECT_MS min/med/max', width: 24, value: (r) => range(r.result.stats?.connect_ms) }
      : { title: 'CONNECT_MS', width: 10, value: (r) => r.result.connect_ms },
    { title: 'ERROR', width: 0, value: (r) => (r.result.error ? `${r.result.error}${r.reason ? ` (${r.reason})` : ''}` : null) },
  ];
}

export async function run(argv: string[]): Promise<number> {
  const v = parseFlags(argv, flags, 'hops');
  if (v.help) {
    process.stdout.write(helpText(USAGE, flags));
    return 0;
  }
  const count = intFlag('count', v.count as string, 1, MAX_COUNT);
  const concurrency = intFlag('concurrency', v.concurrency as string, 1, MAX_CONCURRENCY);
  const timeoutMs = Number(durationFlag('timeout', v.timeout as string, 300_000_000_000n) / 1_000_000n);
  if (timeoutMs < 1) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--timeout ${v.timeout}: too short`, 'give at least 1ms, e.g. --timeout 2s');
  checkTargetCount(v._.length);
  const shipper = shipperFromFlags<HopsResult>(v, 'hops');
  requireKernel('hops', v.verbose);
  requireFeatures(['socket_filter']);

  const prober = HopsProber.open(concurrency);
  const unregister = onCleanup('hops probes and socket filter', () => prober.close());
  const spread = count > 1;
  // ndjson gets exactly the documented object; the table also shows the system's words.
  const json = makeSink<HopsResult>('ndjson', process.stdout, []);
  const table = makeSink<Row>('table', process.stdout, columns(spread));
  let measured = true;
  // src/lifecycle.ts notices a reader that went away, also while probes wait quietly.
  const gone = () => isStdoutClosed() || stopReason() === 'stdout closed';
  await runHops(prober, v._, { count, timeoutMs, concurrency, signal: stopSignal }, (row) => {
    if (row.result.hops === null) measured = false;
    shipper?.write(row.result);
    if (gone()) return;
    if (v.json) json.write(row.result);
    else table.write({ ...row, spread });
  });
  unregister();
  prober.close();
  await finishShipper(shipper);
  if (stopSignal.aborted) return 1;
  return measured ? 0 : 1;
}
