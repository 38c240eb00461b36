// GET /v1/agents: every agent that delivered a batch, from the batches stored (capabilities, last
// seen, batches, events) and what it reported about itself (version of its latest run, drops
// summed over its runs).
import { QueryParams, type BuiltQuery } from '../query.js';
import { COMMON_KEYS, commonFilter, commonWhere, isoOf, whereClause, type CommonFilter, type Params } from './filters.js';

export type AgentsQuery = CommonFilter;

export function parseAgents(search: URLSearchParams, nowMs = Date.now()): AgentsQuery {
  return commonFilter(new QueryParams(search, COMMON_KEYS, nowMs));
}

/** since/until select agents by the time their batches arrived. */
export function buildAgents(q: AgentsQuery): BuiltQuery {
  const params: Params = {};
  const where = whereClause(commonWhere(q, params, 'b.received', 'b.agent'));
  const sql = 'WITH r AS (SELECT agent, arg_max(version, updated) AS version, sum(drops)::BIGINT AS drops FROM agent_runs GROUP BY agent) ' +
    'SELECT b.agent, list_sort(list_distinct(list(b.capability))), epoch_ms(max(b.received)), count(*)::BIGINT, sum(b.events)::BIGINT, any_value(r.version), coalesce(any_value(r.drops), 0) ' +
    `FROM ingest_batches b LEFT JOIN r ON r.agent = b.agent${where} GROUP BY b.agent ORDER BY b.agent`;
  return { sql, params };
}

export function shapeAgents(rows: unknown[][]) {
  return {
    agents: rows.map(([name, caps, last, batches, events, version, drops]) => ({
      name: name as string, capabilities: [...(caps as { items: string[] }).items], last_seen: isoOf(last),
      version: (version as string | null) ?? null, batches: Number(batches), events: Number(events), drops: Number(drops),
    })),
  };
}
