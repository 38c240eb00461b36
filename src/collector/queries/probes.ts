// GET /v1/probes?run=ID: where each probe of a run went. The sender's own records (`tcplens probe`
// agents: status, latency, the pod that answered) and every sighting of the probe's tag by http
// agents (one hop each, oldest first), joined by probe id "RUN-SEQ".
import { badQuery, QueryParams, type BuiltQuery } from '../query.js';
import { capturePointSql, COMMON_KEYS, commonFilter, commonWhere, DEFAULT_GATEWAY_PORT, legSql, num, portParam, whereClause, type CommonFilter, type Params } from './filters.js';
import { DUCKDB, type SqlDialect } from './dialect.js';

export interface ProbesQuery extends CommonFilter { run: string; gatewayPort: number }

/** Sightings read at most (a run has at most 100000 probes, each seen on a few legs). */
export const MAX_SIGHTINGS = 1_000_000;
const RUN_ID = /^[A-Za-z0-9._:]{1,64}$/;

export function parseProbes(search: URLSearchParams, nowMs = Date.now()): ProbesQuery {
  const p = new QueryParams(search, [...COMMON_KEYS, 'run', 'gateway_port'], nowMs);
  const run = p.get('run');
  if (run === null) badQuery('run= is required', 'the run id tcplens probe printed, e.g. /v1/probes?run=3fa2c1d0');
  if (!RUN_ID.test(run)) badQuery(`run=${run.slice(0, 40)}: not a run id`, 'letters, digits, \'.\', \'_\' and \':\' (tcplens probe prints it)');
  return { ...commonFilter(p), run, gatewayPort: portParam(p, 'gateway_port', DEFAULT_GATEWAY_PORT) };
}

/** The sender's records of the run. */
export function buildProbeSent(q: ProbesQuery, d: SqlDialect = DUCKDB): BuiltQuery {
  const params: Params = { run: q.run };
  const where = whereClause([...commonWhere(q, params, d), 'run = $run']);
  return { sql: `SELECT probe, status, latency_ms, server FROM "probe"${where} ORDER BY id`, params };
}

/** The http agents' sightings of the run's probes, oldest first. */
export function buildProbeSightings(q: ProbesQuery, d: SqlDialect = DUCKDB): BuiltQuery {
  const params: Params = { prefix: `${q.run}-`, gateway_port: q.gatewayPort, max: MAX_SIGHTINGS };
  const where = whereClause([...commonWhere(q, params, d), d.startsWith('probe', '$prefix')]);
  return {
    sql: `SELECT probe, agent, ${d.netns}, ${legSql(d)}, client, server, latency_ms, status, ${capturePointSql(d)} FROM "http"${where} ORDER BY ts, id LIMIT $max`,
    params,
  };
}

interface Hop { agent: string; netns: string | null; leg: 'in' | 'out'; client: string; server: string; latency_ms: number | null }
interface Probe { id: string; status: number | null; latency_ms: number | null; hops: Hop[]; gateway: string | null; pod: string | null }

const seqOf = (id: string) => Number(id.slice(id.lastIndexOf('-') + 1));

/**
 * Per probe: status and latency as the sender saw them (else as its first inbound hop saw them);
 * gateway = the capture point of its first inbound hop (else of its first hop); pod = the name the
 * answer gave the sender (else the server address of its first outbound hop).
 */
export function shapeProbes(q: ProbesQuery, sent: unknown[][], sightings: unknown[][]) {
  const probes = new Map<string, Probe & { point: { in: string | null; any: string | null }; podAddress: string | null; sent: boolean }>();
  const entry = (id: string) => {
    let p = probes.get(id);
    if (!p) probes.set(id, p = { id, status: null, latency_ms: null, hops: [], gateway: null, pod: null, point: { in: null, any: null }, podAddress: null, sent: false });
    return p;
  };
  for (const [id, status, latency, server] of sent) {
    const p = entry(id as string);
    Object.assign(p, { status: num(status), latency_ms: num(latency), pod: (server as string | null) ?? p.pod, sent: true });
  }
  for (const [id, agent, netns, leg, client, server, latency, status, point] of sightings) {
    const p = entry(id as string);
    p.hops.push({ agent: agent as string, netns: (netns as string | null) ?? null, leg: leg as 'in' | 'out', client: client as string, server: server as string, latency_ms: num(latency) });
    p.point.any ??= point as string;
    if (leg === 'in' && p.point.in === null) {
      p.point.in = point as string;
      if (!p.sent) { p.status = num(status); p.latency_ms = num(latency); }
    }
    if (leg === 'out') p.podAddress ??= server as string;
  }
  // Names come from the data (a pod names itself): no prototype for them to land on.
  const gateways: Record<string, number> = Object.create(null), pods: Record<string, number> = Object.create(null);
  const out: Probe[] = [...probes.values()].sort((a, b) => seqOf(a.id) - seqOf(b.id) || a.id.localeCompare(b.id)).map((p) => {
    const gateway = p.point.in ?? p.point.any;
    const pod = p.pod ?? p.podAddress;
    if (gateway !== null) gateways[gateway] = (gateways[gateway] ?? 0) + 1;
    if (pod !== null) pods[pod] = (pods[pod] ?? 0) + 1;
    return { id: p.id, status: p.status, latency_ms: p.latency_ms, hops: p.hops, gateway, pod };
  });
  return { run: q.run, probes: out, distribution: { gateways, pods } };
}
