// The collector's own Prometheus metrics. Label values come from closed sets (capabilities,
// outcomes, error codes) except agent names, which are capped: past MAX_AGENT_LABELS agents a new
// one is counted, not labelled, so a misbehaving fleet cannot blow up the scrape.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const MAX_AGENT_LABELS = 500;

export class CollectorMetrics {
  readonly registry = new Registry();
  private readonly events: Counter<'capability'>;
  private readonly batches: Counter<'capability' | 'outcome'>;
  private readonly rejected: Counter<'code'>;
  private readonly latency: Histogram<'outcome'>;
  private readonly lastSeen: Gauge<'agent'>;
  private readonly unlabelled: Counter;
  private readonly agents = new Set<string>();

  constructor(storageBytes: () => number) {
    const registers = [this.registry];
    this.events = new Counter({ name: 'tcplens_collector_events_total', help: 'Events stored, by capability', labelNames: ['capability'], registers });
    this.batches = new Counter({ name: 'tcplens_collector_batches_total', help: 'Ingest batches by outcome (stored, duplicate: a retry of a stored batch, rejected)', labelNames: ['capability', 'outcome'], registers });
    this.rejected = new Counter({ name: 'tcplens_collector_rejected_requests_total', help: 'Requests refused, by TCPLENS_ERR_ code', labelNames: ['code'], registers });
    this.latency = new Histogram({
      name: 'tcplens_collector_batch_duration_seconds', help: 'From request to acknowledgement of an ingest batch (validation, storage, commit)',
      labelNames: ['outcome'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    });
    this.lastSeen = new Gauge({ name: 'tcplens_collector_agent_last_seen_timestamp_seconds', help: `When each agent last delivered a batch (at most ${MAX_AGENT_LABELS} agents labelled)`, labelNames: ['agent'], registers });
    this.unlabelled = new Counter({ name: 'tcplens_collector_agent_batches_unlabelled_total', help: `Batches from agents beyond the first ${MAX_AGENT_LABELS}, which get no label of their own`, registers });
    new Gauge({ name: 'tcplens_collector_storage_bytes', help: 'Size of the DuckDB file and its write-ahead log', registers, collect() { this.set(storageBytes()); } });
    const agents = this.agents;
    new Gauge({ name: 'tcplens_collector_agents', help: 'Agents with a last-seen label', registers, collect() { this.set(agents.size); } });
  }

  batch(capability: string, outcome: 'stored' | 'duplicate' | 'rejected', events: number, seconds: number): void {
    this.batches.inc({ capability, outcome });
    if (outcome === 'stored') this.events.inc({ capability }, events);
    this.latency.observe({ outcome }, seconds);
  }

  reject(code: string): void {
    this.rejected.inc({ code });
  }

  seen(agent: string, atMs: number): void {
    if (!this.agents.has(agent)) {
      if (this.agents.size >= MAX_AGENT_LABELS) { this.unlabelled.inc(); return; }
      this.agents.add(agent);
    }
    this.lastSeen.set({ agent }, atMs / 1000);
  }
}
