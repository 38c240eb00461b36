// tcplens probe URL: tagged test requests (X-Tcplens-Probe: <run>-<seq>) for `tcplens http` to
// follow across every hop; per request its status and latency, then a summary.
import { TcplensError } from '../errors.js';
import { isStdoutClosed, stopSignal } from '../lifecycle.js';
import { newRunId, PROBE_HEADER, sendProbes, type ProbeResult } from '../capabilities/http/probe.js';
import { makeSink } from '../sinks/index.js';
import type { Column } from '../sinks/table.js';
import { durationFlag, helpText, intFlag, parseFlags, type FlagTable } from './flags.js';
import { collectorAgentFlags, finishShipper, shipperFromFlags } from './collector-agent-flags.js';

export const flags = {
  count: { type: 'string', short: 'c', arg: 'N', default: '10', help: 'requests to send (1-100000)' },
  concurrency: { type: 'string', arg: 'C', default: '1', help: 'requests in flight at once (1-1024)' },
  rate: { type: 'string', arg: 'R', default: '0', help: 'at most R requests per second (0: as fast as they complete)' },
  header: { type: 'string', arg: 'NAME', default: PROBE_HEADER, help: 'the tag header (tcplens http --probe-header NAME must match)' },
  timeout: { type: 'string', arg: 'DUR', default: '5s', help: 'give up on a request after DUR' },
  json: { type: 'boolean', help: 'one JSON object per request, then the summary as {"summary": ...}' },
  ...collectorAgentFlags,
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies FlagTable;

const columns: Column<ProbeResult>[] = [
  { title: 'PROBE', width: 14, value: (r) => r.probe },
  { title: 'STATUS', width: 6, value: (r) => r.status },
  { title: 'MS', width: 8, value: (r) => r.latency_ms },
  { title: 'SERVER', width: 10, value: (r) => r.server },
  { title: 'ERROR', width: 0, value: (r) => r.error },
];

function parseUrl(text: string | undefined): URL {
  let url: URL;
  try {
    url = new URL(text ?? '');
  } catch {
    throw new TcplensError('TCPLENS_ERR_BAD_TARGET', `'${text ?? ''}' is not a URL`, 'e.g. tcplens probe http://10.1.255.1/');
  }
  if (url.protocol !== 'http:') throw new TcplensError('TCPLENS_ERR_BAD_TARGET', `${url.protocol} is not supported`, 'probes are plain HTTP/1.1: http://HOST[:PORT]/PATH');
  return url;
}

export async function run(argv: string[]): Promise<number> {
  const v = parseFlags(argv, flags, 'probe');
  if (v.help) {
    process.stdout.write(helpText('tcplens probe URL [flags]', flags));
    return 0;
  }
  if (v._.length !== 1) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `expected one URL, got ${v._.length}`, 'e.g. tcplens probe http://10.1.255.1/ --count 100');
  const plan = {
    url: parseUrl(v._[0]),
    count: intFlag('count', v.count as string, 1, 100_000),
    concurrency: intFlag('concurrency', v.concurrency as string, 1, 1024),
    rate: intFlag('rate', v.rate as string, 0, 100_000),
    header: (v.header as string).toLowerCase(),
    timeoutMs: Number(durationFlag('timeout', v.timeout as string, 300_000_000_000n) / 1_000_000n),
    signal: stopSignal,
  };
  if (!/^[a-z0-9-]+$/.test(plan.header)) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--header ${v.header}: not a header name`, 'letters, digits and -');
  const shipper = shipperFromFlags<ProbeResult>(v, 'probe');
  const run = newRunId();
  process.stderr.write(`tcplens probe: run ${run}: ${plan.count} requests to ${plan.url.href} tagged ${plan.header}: ${run}-<seq>\n`);
  const sink = makeSink<ProbeResult>(v.json ? 'ndjson' : 'table', process.stdout, columns);
  const s = await sendProbes(plan, run, (r) => {
    shipper?.write(r);
    if (!isStdoutClosed()) sink.write(r);
  });
  if (v.json && !isStdoutClosed()) process.stdout.write(`${JSON.stringify({ summary: s })}\n`);
  await finishShipper(shipper);
  process.stderr.write(`tcplens probe: run ${run}: ${s.sent} sent, ${s.answered} answered, ${s.errors} errors; latency p50 ${s.p50_ms ?? '-'} ms, p99 ${s.p99_ms ?? '-'} ms\n`);
  return s.errors || s.sent < plan.count ? 1 : 0;
}
