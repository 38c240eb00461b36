// A batch from the bus into the store: the same checks, rows, metrics and agent reports as an
// HTTP ingest (server.ts), with the agent, capability and batch id from the message's headers.
import { isTcplensError, TcplensError } from '../../errors.js';
import { agentReportOf, type AgentRuns } from '../agent-runs.js';
import type { CollectorMetrics } from '../metrics.js';
import { NdjsonRows, tooLarge } from '../ndjson-body.js';
import { AGENT_NAME, CAPABILITIES, capabilitySchema } from '../schema.js';
import { splitBatchId } from '../store.js';
import type { CollectorStore } from '../store-api.js';
import type { BusBatchHandler } from './consumer.js';
import { HEADER } from './names.js';

const BATCH_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface BusIngestTarget { store: CollectorStore; metrics: CollectorMetrics; agentRuns: AgentRuns; maxBodyBytes: number }

export function busIngest(t: BusIngestTarget): BusBatchHandler {
  return async (b) => {
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    const capLabel = Object.hasOwn(CAPABILITIES, b.capability) ? b.capability : 'unknown';
    try {
      const schema = capabilitySchema(b.capability);
      if (!AGENT_NAME.test(b.agent)) {
        throw new TcplensError('TCPLENS_ERR_BAD_QUERY', `${HEADER.agent} ${b.agent.slice(0, 40)}: expected a name of letters, digits, '.', '_' or '-' (at most 64)`, 'tcplens agents send their --agent-name');
      }
      if (!BATCH_ID.test(b.batch)) {
        throw new TcplensError('TCPLENS_ERR_BAD_QUERY', `${HEADER.batch} ${b.batch.slice(0, 40)}: expected an id of letters, digits, '.', '_', ':' or '-' (at most 128)`, 'tcplens agents send RUN-SEQUENCE');
      }
      const report = agentReportOf(new URLSearchParams({ ...(b.version !== null && { version: b.version }), ...(b.dropped !== null && { dropped: b.dropped }) }));
      if (b.body.length > t.maxBodyBytes) throw tooLarge(t.maxBodyBytes);
      const parser = new NdjsonRows(schema);
      parser.push(Buffer.from(b.body.buffer, b.body.byteOffset, b.body.byteLength).toString('utf8'));
      const rows = parser.end();
      const outcome = await t.store.ingest({ agent: b.agent, capability: schema.name, batch: b.batch, rows });
      t.metrics.batch(schema.name, outcome, rows.length, seconds());
      if (outcome === 'stored') t.metrics.records(schema, rows);
      t.metrics.seen(b.agent, Date.now());
      t.agentRuns.note(b.agent, splitBatchId(b.batch).run ?? b.batch, report, Date.now());
      return outcome;
    } catch (e) {
      t.metrics.batch(capLabel, 'rejected', 0, seconds());
      if (isTcplensError(e)) t.metrics.reject(e.code);
      throw e;
    }
  };
}
