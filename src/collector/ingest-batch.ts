// What every way into the store does with a batch, whether it came over HTTP (server.ts) or from
// the bus (bus/ingest.ts): the agent name and batch id checked, then the rows stored, counted in
// the metrics, and the agent's report noted.
import { TcplensError } from '../errors.js';
import type { AgentReport, AgentRuns } from './agent-runs.js';
import type { CollectorMetrics } from './metrics.js';
import { AGENT_NAME, type CapabilitySchema, type EventRow } from './schema.js';
import { splitBatchId } from './store.js';
import type { CollectorStore, IngestOutcome } from './store-api.js';

const BATCH_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface IngestTarget { store: CollectorStore; metrics: CollectorMetrics; agentRuns: AgentRuns }

/** Where each value came from (`agent=`, a header name) and the hint for each, for the error. */
export interface IdentitySource { agent: string; batch: string; agentHint: string; batchHint: string }

export function checkIdentity(agent: string, batch: string, from: IdentitySource): void {
  if (!AGENT_NAME.test(agent)) {
    throw new TcplensError('TCPLENS_ERR_BAD_QUERY', `${from.agent}${agent.slice(0, 40)}: expected a name of letters, digits, '.', '_' or '-' (at most 64)`, from.agentHint);
  }
  if (!BATCH_ID.test(batch)) {
    throw new TcplensError('TCPLENS_ERR_BAD_QUERY', `${from.batch}${batch.slice(0, 40)}: expected an id of letters, digits, '.', '_', ':' or '-' (at most 128)`, from.batchHint);
  }
}

export async function storeBatch(t: IngestTarget, b: { agent: string; schema: CapabilitySchema; batch: string; rows: EventRow[]; report: AgentReport },
  seconds: () => number): Promise<IngestOutcome> {
  const outcome = await t.store.ingest({ agent: b.agent, capability: b.schema.name, batch: b.batch, rows: b.rows });
  t.metrics.batch(b.schema.name, outcome, b.rows.length, seconds());
  if (outcome === 'stored') t.metrics.records(b.schema, b.rows);
  t.metrics.seen(b.agent, Date.now());
  t.agentRuns.note(b.agent, splitBatchId(b.batch).run ?? b.batch, b.report, Date.now());
  return outcome;
}
