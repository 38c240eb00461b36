// A whole `hops` run: targets -> addresses (dns.lookup, all of them) -> probes, at most
// `concurrency` in flight, each address probed `count` times -> one result per address, in the
// order the targets were given (emitted as soon as every earlier one is done). A target that
// cannot be parsed or resolved is a result with status "error"; it never stops the others.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isTcplensError, TcplensError, type ErrorCode } from '../../errors.js';
import { formatEndpoint, parseAddr, type Family } from '../../net/addr.js';
import { checkTargetCount, parseTarget, type TargetSpec } from '../../net/target.js';
import { hopDistance, initialTtl } from '../../net/ttl.js';
import type { HopsProber, ProbeAddress, ProbeOutcome, ProbeStatus } from './hops.js';

export type Lookup = (host: string, family: 0 | Family) => Promise<{ address: string; family: number }[]>;

export interface HopsRunOptions {
  count: number;
  timeoutMs: number;
  concurrency: number;
  signal?: AbortSignal;
  inNetns?: <T>(fn: () => T) => T;
  lookup?: Lookup;
}

export interface Spread { min: number; median: number; max: number }

/** The `--json` object: exactly these fields; with count > 1 also probes, replies and stats. */
export interface HopsResult {
  target: string;
  /** "addr:port" or "[addr]:port"; null when the target never became an address */
  address: string | null;
  family: Family | null;
  status: ProbeStatus;
  ttl: number | null;
  initial_ttl: number | null;
  hops: number | null;
  connect_ms: number | null;
  error: ErrorCode | null;
  probes?: number;
  replies?: number;
  stats?: { ttl: Spread | null; hops: Spread | null; connect_ms: Spread | null };
}

/** A result and, for people, the system's words for its error. */
export interface HopsRow { result: HopsResult; reason: string | null }

const defaultLookup: Lookup = (host, family) => dnsLookup(host, { all: true, family, verbatim: true });

/** Lower median (an element of the list, so TTLs and hops stay whole numbers). */
export function spread(values: number[]): Spread | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return { min: s[0], median: s[(s.length - 1) >> 1], max: s[s.length - 1] };
}

const STATUS_ORDER: ProbeStatus[] = ['open', 'refused', 'unreachable', 'timeout', 'error'];

/** N probes of one address as one result: the most frequent status (ties: open, refused, ...),
 * ttl/initial_ttl/hops/connect_ms from the median reply, min/median/max in stats. */
export function combine(target: string, addr: ProbeAddress, outs: ProbeOutcome[]): HopsRow {
  const tally = (st: ProbeStatus) => outs.filter((o) => o.status === st).length;
  const status = STATUS_ORDER.reduce((best, st) => (tally(st) > tally(best) ? st : best), STATUS_ORDER[0]);
  const first = outs.find((o) => o.status === status)!;
  const ttls = spread(outs.flatMap((o) => (o.ttl === null ? [] : [o.ttl])));
  const ms = spread(outs.flatMap((o) => (o.connectMs === null ? [] : [o.connectMs])));
  const result: HopsResult = {
    target,
    address: formatEndpoint(addr.bytes, addr.family, addr.port),
    family: addr.family,
    status,
    ttl: ttls?.median ?? null,
    initial_ttl: ttls ? initialTtl(ttls.median) : null,
    hops: ttls ? hopDistance(ttls.median) : null,
    connect_ms: ms?.median ?? null,
    error: first.error,
  };
  if (outs.length > 1) {
    result.probes = outs.length;
    result.replies = outs.filter((o) => o.ttl !== null).length;
    result.stats = { ttl: ttls, hops: spread(outs.flatMap((o) => (o.hops === null ? [] : [o.hops]))), connect_ms: ms };
  }
  return { result, reason: first.reason };
}

export function targetError(target: string, e: unknown): HopsRow {
  const code = isTcplensError(e) ? e.code : 'TCPLENS_ERR_RESOLVE';
  return {
    result: { target, address: null, family: null, status: 'error', ttl: null, initial_ttl: null, hops: null, connect_ms: null, error: code },
    reason: (e as Error).message,
  };
}

/** Addresses of a parsed target, deduplicated, in the resolver's order. */
async function addresses(spec: TargetSpec, lookup: Lookup): Promise<ProbeAddress[]> {
  if (spec.literal) return [{ ...parseAddr(spec.host)!, port: spec.port }];
  let found: { address: string; family: number }[];
  try {
    found = await lookup(spec.host, spec.family);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new TcplensError('TCPLENS_ERR_RESOLVE', `cannot resolve '${spec.host}': ${err.code ?? err.message}`, 'check the name, or give an address');
  }
  const seen = new Set<string>();
  const out: ProbeAddress[] = [];
  for (const f of found) {
    const a = parseAddr(f.address);
    if (!a || (spec.family && a.family !== spec.family) || seen.has(f.address)) continue;
    seen.add(f.address);
    out.push({ ...a, port: spec.port });
  }
  if (!out.length) {
    throw new TcplensError('TCPLENS_ERR_RESOLVE', `'${spec.host}' has no IPv${spec.family || '4/6'} address`,
      spec.family ? `try tcp${spec.family === 4 ? 6 : 4}:// or a plain host:port` : 'check the name, or give an address');
  }
  return out;
}

/** A FIFO gate: at most n tasks running. */
function gate(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const queue: (() => void)[] = [];
  return async (task) => {
    if (running >= n) await new Promise<void>((r) => queue.push(r));
    running++;
    try {
      return await task();
    } finally {
      running--;
      queue.shift()?.();
    }
  };
}

export async function runHops(prober: HopsProber, targets: string[], opts: HopsRunOptions, emit: (row: HopsRow) => void = () => {}): Promise<HopsRow[]> {
  checkTargetCount(targets.length);
  const lookup = opts.lookup ?? defaultLookup;
  const limit = gate(opts.concurrency);
  const probeOpts = { timeoutMs: opts.timeoutMs, signal: opts.signal, inNetns: opts.inNetns };
  const perTarget = targets.map(async (text): Promise<HopsRow[]> => {
    let addrs: ProbeAddress[];
    try {
      addrs = await addresses(parseTarget(text), lookup);
    } catch (e) {
      return [targetError(text, e)];
    }
    return Promise.all(addrs.map(async (a) => {
      const outs = await Promise.all(Array.from({ length: opts.count }, () => limit(() => prober.probe(a, probeOpts))));
      return combine(text, a, outs);
    }));
  });
  const rows: HopsRow[] = [];
  for (const p of perTarget) {
    for (const row of await p) {
      rows.push(row);
      emit(row);
    }
  }
  return rows;
}
