// GET /v1/agents: every agent that delivered a batch, from the batches stored (capabilities, last
// seen, batches, events) and what it reported about itself (version of its latest run, drops
// summed over its runs).
import { QueryParams, type BuiltQuery } from '../query.js';
import { COMMON_KEYS, commonFilter, commonWhere, isoOf, whereClause, type CommonFilter, type Params } from './filters.js';
import { DUCKDB, type SqlDialect } from './dialect.js';

export type AgentsQuery = CommonFilter;

export function parseAgents(search: URLSearchParams, nowMs = Date.now()): AgentsQuery {
  return commonFilter(new QueryParams(search, COMMON_KEYS, nowMs));
}

/** since/until select agents by the time their batches arrived. */
export function buildAgents(q: AgentsQuery, d: SqlDialect = DUCKDB): BuiltQuery {
  const params: Params = {};
  const where = whereClause(commonWhere(q, params, d, 'b.received', 'b.agent'));
  if (d.name === 'clickhouse') return { sql: clickHouseAgents(where), params };
  const sql = 'WITH r AS (SELECT agent, arg_max(version, updated) AS version, sum(drops)::BIGINT AS drops FROM agent_runs GROUP BY agent) ' +
    'SELECT b.agent, list_sort(list_distinct(list(b.capability))), epoch_ms(max(b.received)), count(*)::BIGINT, sum(b.events)::BIGINT, any_value(r.version), coalesce(any_value(r.drops), 0) ' +
    `FROM ingest_batches b LEFT JOIN r ON r.agent = b.agent${where} GROUP BY b.agent ORDER BY b.agent`;
  return { sql, params };
}

/** ClickHouse keeps agent_runs append-only (a row per report, no upsert) and ingest_batches as a
 * ReplacingMergeTree, so each run is folded here (its last version given, its largest drops) and
 * batches are read FINAL; argMax skips NULL versions as DuckDB's coalesce-on-upsert does. */
function clickHouseAgents(where: string): string {
  // (ClickHouse resolves an alias before a column of the same name: none here.)
  return 'WITH r AS (SELECT agent, argMax(run_version, run_updated) AS version, sum(run_drops) AS drops FROM ' +
    '(SELECT agent, run, argMax(version, updated) AS run_version, max(drops) AS run_drops, max(updated) AS run_updated FROM agent_runs GROUP BY agent, run) GROUP BY agent) ' +
    'SELECT b.agent, arraySort(groupUniqArray(b.capability)), toUnixTimestamp64Milli(max(b.received)), count(), sum(b.events), any(r.version), coalesce(any(r.drops), 0) ' +
    `FROM ingest_batches AS b FINAL LEFT JOIN r ON r.agent = b.agent${where} GROUP BY b.agent ORDER BY b.agent`;
}

export function shapeAgents(rows: unknown[][]) {
  return {
    agents: rows.map(([name, caps, last, batches, events, version, drops]) => ({
      name: name as string, capabilities: [...(Array.isArray(caps) ? caps as string[] : (caps as { items: string[] }).items)], last_seen: isoOf(last),
      version: (version as string | null) ?? null, batches: Number(batches), events: Number(events), drops: Number(drops),
    })),
  };
}
