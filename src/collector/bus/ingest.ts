// A batch from the bus into the store: the same checks, rows, metrics and agent reports as an
// HTTP ingest (ingest-batch.ts, as server.ts), with the agent, capability and batch id from the message's headers.
import { isTcplensError } from '../../errors.js';
import { agentReportOf } from '../agent-runs.js';
import { checkIdentity, storeBatch, type IngestTarget } from '../ingest-batch.js';
import { NdjsonRows, tooLarge } from '../ndjson-body.js';
import { CAPABILITIES, capabilitySchema } from '../schema.js';
import type { BusBatchHandler } from './consumer.js';
import { HEADER } from './names.js';

export interface BusIngestTarget extends IngestTarget { maxBodyBytes: number }

export function busIngest(t: BusIngestTarget): BusBatchHandler {
  return async (b) => {
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    const capLabel = Object.hasOwn(CAPABILITIES, b.capability) ? b.capability : 'unknown';
    try {
      const schema = capabilitySchema(b.capability);
      checkIdentity(b.agent, b.batch, { agent: `${HEADER.agent} `, batch: `${HEADER.batch} `, agentHint: 'tcplens agents send their --agent-name',
        batchHint: 'tcplens agents send RUN-SEQUENCE' });
      const report = agentReportOf(new URLSearchParams({ ...(b.version !== null && { version: b.version }), ...(b.dropped !== null && { dropped: b.dropped }) }));
      if (b.body.length > t.maxBodyBytes) throw tooLarge(t.maxBodyBytes);
      const parser = new NdjsonRows(schema);
      parser.push(Buffer.from(b.body.buffer, b.body.byteOffset, b.body.byteLength).toString('utf8'));
      const rows = parser.end();
      return await storeBatch(t, { agent: b.agent, schema, batch: b.batch, rows, report }, seconds);
    } catch (e) {
      t.metrics.batch(capLabel, 'rejected', 0, seconds());
      if (isTcplensError(e)) t.metrics.reject(e.code);
      throw e;
    }
  };
}
