// The collector's own Prometheus metrics. Label values come from closed sets (capabilities,
// outcomes, error codes) except agent names, services and backends, which are capped: past
// MAX_AGENT_LABELS agents a new one is counted, not labelled, and past MAX_SERVICE_LABELS services
// (or backends) the rest share the label "other", so a misbehaving fleet cannot blow up the scrape.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CapabilitySchema, EventRow } from './schema.js';

export const MAX_AGENT_LABELS = 500;
export const MAX_SERVICE_LABELS = 200;
export const OTHER_LABEL = 'other';

/** The first `cap` values seen keep their own label; later ones become "other". */
export class CappedLabels {
  private readonly seen = new Set<string>();
  constructor(private readonly cap: number) {}

  label(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.cap) return OTHER_LABEL;
    this.seen.add(value);
    return value;
  }
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class CollectorMetrics {
  readonly registry = new Registry();
  private readonly events: Counter<'capability'>;
  private readonly batches: Counter<'capability' | 'outcome'>;
  private readonly rejected: Counter<'code'>;
  private readonly latency: Histogram<'outcome'>;
  private readonly lastSeen: Gauge<'agent'>;
  private readonly unlabelled: Counter;
  private readonly agents = new Set<string>();
  private readonly serviceConnections: Counter<'service'>;
  private readonly serviceKernel: Histogram<'service'>;
  private readonly backendRequests: Counter<'backend' | 'class'>;
  private readonly backendLatency: Histogram<'backend'>;
  private readonly services = new CappedLabels(MAX_SERVICE_LABELS);
  private readonly backends = new CappedLabels(MAX_SERVICE_LABELS);

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
    this.serviceConnections = new Counter({ name: 'tcplens_service_connections_total', help: `Inbound connections accept agents saw, per service (local ip:port; past ${MAX_SERVICE_LABELS} services: "other")`, labelNames: ['service'], registers });
    this.serviceKernel = new Histogram({ name: 'tcplens_service_accept_kernel_seconds', help: 'Kernel time tcplens spent per accepted connection, per service', labelNames: ['service'],
      buckets: [1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 1e-4], registers });
    this.backendRequests = new Counter({ name: 'tcplens_backend_requests_total', help: `HTTP requests http agents saw, per backend (server ip:port; past ${MAX_SERVICE_LABELS}: "other") and status class (2xx..5xx, error: no answer)`, labelNames: ['backend', 'class'], registers });
    this.backendLatency = new Histogram({ name: 'tcplens_backend_latency_seconds', help: 'HTTP latency (request to first answer byte) per backend', labelNames: ['backend'], buckets: LATENCY_BUCKETS, registers });
    const agents = this.agents;
    new Gauge({ name: 'tcplens_collector_agents', help: 'Agents with a last-seen label', registers, collect() { this.set(agents.size); } });
  }

  batch(capability: string, outcome: 'stored' | 'duplicate' | 'rejected', events: number, seconds: number): void {
    this.batches.inc({ capability, outcome });
    if (outcome === 'stored') this.events.inc({ capability }, events);
    this.latency.observe({ outcome }, seconds);
  }

  /** Per-service and per-backend figures from a stored batch's rows: counters are summed per
   * label first and incremented once per label and batch (a prom-client call per row was about a
   * microsecond per event); histograms are observed per row on the label's child. */
  records(schema: CapabilitySchema, rows: EventRow[]): void {
    const at = (name: string) => schema.fields.findIndex((f) => f.name === name);
    const counts = new Map<string, number>();
    const add = (key: string, n: number) => counts.set(key, (counts.get(key) ?? 0) + n);
    if (schema.name === 'accept') {
      const [local, count, summary, kernel] = [at('local'), at('count'), at('summary'), at('kernel_ns')];
      const kernelOf = new Map<string, Histogram.Internal<'service'>>();
      for (const { values: v } of rows) {
        const service = this.services.label(v[local] as string);
        const n = (v[count] as number) - (v[summary] ? 1 : 0);
        if (n > 0) add(service, n);
        if (!v[summary]) {
          let h = kernelOf.get(service);
          if (!h) kernelOf.set(service, h = this.serviceKernel.labels({ service }));
          h.observe((v[kernel] as number) / 1e9);
        }
      }
      for (const [service, n] of counts) this.serviceConnections.inc({ service }, n);
    } else if (schema.name === 'http') {
      const [server, status, latency, error] = [at('server'), at('status'), at('latency_ms'), at('error')];
      const latencyOf = new Map<string, Histogram.Internal<'backend'>>();
      for (const { values: v } of rows) {
        const backend = this.backends.label(v[server] as string);
        const code = v[status] as number | null;
        add(`${backend}\n${v[error] !== null || code === null ? 'error' : code >= 100 && code < 600 ? `${Math.floor(code / 100)}xx` : OTHER_LABEL}`, 1);
        if (v[latency] !== null) {
          let h = latencyOf.get(backend);
          if (!h) latencyOf.set(backend, h = this.backendLatency.labels({ backend }));
          h.observe((v[latency] as number) / 1000);
        }
      }
      for (const [key, n] of counts) {
        const nl = key.lastIndexOf('\n');
        this.backendRequests.inc({ backend: key.slice(0, nl), class: key.slice(nl + 1) }, n);
      }
    }
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
