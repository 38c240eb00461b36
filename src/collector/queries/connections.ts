// Connections seen by accept agents: the top real clients per service, and connections per
// service over time. A merged record counts what it stands for: a first sighting its `count`, a
// window's summary `count - 1` (its first connection was reported on its own already).
import { badQuery, QueryParams, type BuiltQuery } from '../query.js';
import { COMMON_KEYS, commonFilter, commonWhere, isoOf, addressOnlySql, whereClause, type CommonFilter, type Params } from './filters.js';
import { DUCKDB, type SqlDialect } from './dialect.js';
import { CLIENTS_ROLLUP, rollupSource, SERIES_ROLLUP } from '../rollups.js';

/** What one record counts for, and its sum. */
export const CONNECTION_SQL = 'CASE WHEN summary THEN "count" - 1 ELSE "count" END';
export const CONNECTIONS_SQL = `sum(${CONNECTION_SQL})::BIGINT`;
/** The real client when a trusted TOA named one, else the peer the socket saw; without its port. */
export const clientSql = (d: SqlDialect) => addressOnlySql('coalesce(client, peer)', d);

export interface TopClientsQuery extends CommonFilter { service: string | null; limit: number }

export const TOP_DEFAULT = 20;
export const TOP_MAX = 1000;

export function parseTopClients(search: URLSearchParams, nowMs = Date.now()): TopClientsQuery {
  const p = new QueryParams(search, [...COMMON_KEYS, 'service', 'limit'], nowMs);
  return { ...commonFilter(p), service: p.get('service'), limit: p.limit('limit', TOP_DEFAULT, TOP_MAX) };
}

function serviceWhere(q: CommonFilter & { service: string | null }, params: Params, d: SqlDialect): string {
  const where = commonWhere(q, params, d);
  if (q.service !== null) { where.push('"local" = $service'); params.service = q.service; }
  return whereClause(where);
}

const serviceOnly = (q: { service: string | null }, params: Params) => (q.service === null ? [] : (params.service = q.service, ['"local" = $service']));

// The rollups (rollups.ts) are the DuckDB store's: ClickHouse reads its rows, fast enough as they are.
const hasRollups = (d: SqlDialect) => d.name === 'duckdb';

/** useRollups=false: from the rows alone (what the rollup answer is tested against). */
export function buildTopClients(q: TopClientsQuery, d: SqlDialect = DUCKDB, useRollups = hasRollups(d)): BuiltQuery {
  const params: Params = { limit: q.limit };
  // Whole hours from the rollup, the ragged ends from the rows: the same answer.
  const rolled = useRollups && rollupSource(CLIENTS_ROLLUP, q, params, `${clientSql(d)} AS client, "local", agent, ${CONNECTION_SQL} AS connections, coalesce("last", "time") AS "last"`,
    'client, "local", agent, connections, "last"', serviceOnly(q, params));
  if (rolled) {
    return { sql: `SELECT client AS c, "local", sum(connections)::BIGINT AS n, count(DISTINCT agent)::BIGINT, epoch_ms(max("last")) FROM ${rolled} ` +
      'GROUP BY c, "local" ORDER BY n DESC, c, "local" LIMIT $limit', params };
  }
  const sql = `SELECT ${clientSql(d)} AS c, "local", ${CONNECTIONS_SQL} AS n, count(DISTINCT agent)::BIGINT, ${d.epochMs('max(coalesce("last", "time"))')} ` +
    `FROM "accept"${serviceWhere(q, params, d)} GROUP BY c, "local" ORDER BY n DESC, c, "local" LIMIT $limit`;
  return { sql, params };
}

export function shapeTopClients(rows: unknown[][]) {
  return { clients: rows.map(([client, service, n, agents, last]) => ({ client: client as string, service: service as string, connections: Number(n), agents: Number(agents), last: isoOf(last) })) };
}

export interface SeriesQuery extends CommonFilter { service: string | null; stepMs: number }

/** At most this many points in one answer (services x steps); a wider range needs a coarser step. */
export const SERIES_MAX_POINTS = 100_000;

export function parseSeries(search: URLSearchParams, nowMs = Date.now()): SeriesQuery {
  const p = new QueryParams(search, [...COMMON_KEYS, 'service', 'step'], nowMs);
  const step = p.get('step') ?? '60s';
  const m = /^(\d{1,6})(s|m|h|d)?$/.exec(step);
  const ms = m ? Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[(m[2] ?? 's') as 's'] : NaN;
  if (!(ms >= 1000 && ms <= 86_400_000)) badQuery(`step=${step.slice(0, 20)}: expected a step from 1s to 1d`, 'e.g. step=10s, step=1m or step=1h');
  return { ...commonFilter(p), service: p.get('service'), stepMs: ms };
}

export function buildSeries(q: SeriesQuery, d: SqlDialect = DUCKDB, useRollups = hasRollups(d)): BuiltQuery {
  const params: Params = { step: q.stepMs, max: SERIES_MAX_POINTS + 1 };
  // Steps of whole minutes: whole minutes from the rollup, the ragged ends from the rows.
  const rolled = useRollups && q.stepMs % 60_000 === 0
    ? rollupSource(SERIES_ROLLUP, q, params, `"local", ts, ${CONNECTION_SQL} AS connections`, '"local", bucket AS ts, connections', serviceOnly(q, params)) : null;
  if (rolled) {
    return { sql: `SELECT "local", (epoch_ms(ts) // $step) * $step AS t, sum(connections)::BIGINT FROM ${rolled} GROUP BY "local", t ORDER BY "local", t LIMIT $max`, params };
  }
  const sql = `SELECT "local", ${d.intDiv(d.epochMs('ts'), '$step')} * $step AS t, ${CONNECTIONS_SQL} FROM "accept"${serviceWhere(q, params, d)} ` +
    'GROUP BY "local", t ORDER BY "local", t LIMIT $max';
  return { sql, params };
}

export function shapeSeries(q: SeriesQuery, rows: unknown[][]) {
  if (rows.length > SERIES_MAX_POINTS) badQuery(`more than ${SERIES_MAX_POINTS} points`, 'narrow since/until, pick a service=, or give a coarser step=');
  const series: { service: string; points: [number, number][] }[] = [];
  for (const [service, t, n] of rows) {
    if (series.at(-1)?.service !== service) series.push({ service: service as string, points: [] });
    series.at(-1)!.points.push([Number(t), Number(n)]);
  }
  return { step_s: q.stepMs / 1000, series };
}
