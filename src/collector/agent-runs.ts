// What agents say about themselves with each batch (?version=&dropped=): their tcplens version and
// how many records their buffer dropped so far in this run. Kept in memory as batches arrive and
// written to the agent_runs table every few seconds and before /v1/agents answers, so it costs
// the ingest path no transaction of its own; at most the last few seconds of it die with kill -9.
// Retention forgets runs last updated before its cut.
import { TcplensError } from '../errors.js';
import type { CollectorStore } from './store-api.js';

export const AGENT_RUNS_TABLE = 'CREATE TABLE IF NOT EXISTS agent_runs (agent VARCHAR NOT NULL, run VARCHAR NOT NULL, version VARCHAR, ' +
  'drops BIGINT NOT NULL, updated TIMESTAMP NOT NULL, PRIMARY KEY (agent, run))';

const UPSERT = 'INSERT INTO agent_runs VALUES ($agent, $run, $version, $drops, make_timestamp($updated::BIGINT)) ' +
  'ON CONFLICT (agent, run) DO UPDATE SET version = coalesce(excluded.version, version), drops = greatest(drops, excluded.drops), updated = excluded.updated';

// ClickHouse has no upsert: a row per report, folded per run when /v1/agents reads them (queries/agents.ts).
const CLICKHOUSE_SQL = {
  table: "CREATE TABLE IF NOT EXISTS agent_runs (agent String, run String, version Nullable(String), drops Int64, updated DateTime64(6, 'UTC')) " +
    'ENGINE = MergeTree ORDER BY (agent, run)',
  upsert: 'INSERT INTO agent_runs VALUES ($agent, $run, $version, $drops, fromUnixTimestamp64Micro($updated))',
};
const sqlOf = (store: CollectorStore) => (store.dialect.name === 'clickhouse' ? CLICKHOUSE_SQL : { table: AGENT_RUNS_TABLE, upsert: UPSERT });

export const VERSION = /^[A-Za-z0-9._+-]{1,32}$/;

export interface AgentReport { version: string | null; dropped: number }

/** ?version= and ?dropped= of an ingest request (both optional: older agents send neither). */
export function agentReportOf(p: URLSearchParams): AgentReport {
  const version = p.get('version'), dropped = p.get('dropped');
  if (version !== null && !VERSION.test(version)) {
    throw new TcplensError('TCPLENS_ERR_BAD_QUERY', `version=${version.slice(0, 40)}: not a version`, 'letters, digits, \'.\', \'_\', \'+\' and \'-\', at most 32');
  }
  if (dropped !== null && !/^\d{1,15}$/.test(dropped)) {
    throw new TcplensError('TCPLENS_ERR_BAD_QUERY', `dropped=${dropped.slice(0, 40)}: expected a whole number`, 'records the agent dropped so far in this run');
  }
  return { version, dropped: dropped === null ? 0 : Number(dropped) };
}

export class AgentRuns {
  private pending = new Map<string, { agent: string; run: string; report: AgentReport; atMs: number }>();
  private timer: NodeJS.Timeout;
  private lastMs = 0;

  private constructor(private readonly store: CollectorStore, everyMs: number) {
    this.timer = setInterval(() => { void this.flush().catch((e) => process.stderr.write(`tcplens: agent runs: ${(e as Error).message}\n`)); }, everyMs);
    this.timer.unref();
  }

  static async open(store: CollectorStore, everyMs = 5000): Promise<AgentRuns> {
    await store.execute([{ sql: sqlOf(store).table }]);
    // A run not heard from for longer than the retention goes with the events it reported on.
    store.retainAlso('agent_runs', 'updated');
    return new AgentRuns(store, everyMs);
  }

  note(agent: string, run: string, report: AgentReport, nowMs: number): void {
    // Strictly increasing, so "the latest run" is never a tie between two batches in one millisecond.
    const atMs = this.lastMs = Math.max(nowMs, this.lastMs + 1);
    const key = `${agent}\n${run}`;
    const old = this.pending.get(key);
    this.pending.set(key, { agent, run, atMs, report: { version: report.version ?? old?.report.version ?? null, dropped: Math.max(report.dropped, old?.report.dropped ?? 0) } });
  }

  async flush(): Promise<void> {
    if (!this.pending.size) return;
    const rows = [...this.pending.values()];
    this.pending = new Map();
    await this.store.execute(rows.map((r) => ({
      sql: sqlOf(this.store).upsert, params: { agent: r.agent, run: r.run, version: r.report.version, drops: BigInt(r.report.dropped), updated: BigInt(r.atMs) * 1000n },
    })));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
