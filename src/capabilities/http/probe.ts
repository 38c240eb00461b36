// Tagged test requests (issue 11's probes): each carries `X-Tcplens-Probe: <run>-<seq>` so that
// `tcplens http` captures on every hop can follow it. Plain node:http, one new connection per
// request (so each is balanced on its own), paced by --rate, bounded by --concurrency.
import { request as httpRequest, type ClientRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { ErrorCode } from '../../errors.js';
import { quantile } from './balance.js';

export const PROBE_HEADER = 'x-tcplens-probe';

export interface ProbePlan { url: URL; count: number; concurrency: number; rate: number; header: string; timeoutMs: number; signal: AbortSignal }

export interface ProbeResult {
  run: string;
  probe: string;
  seq: number;
  time: string;
  status: number | null;
  latency_ms: number | null;
  /** what answered, when the backend says so in its body ({"server": ...}, as the lab's pods do) */
  server: string | null;
  error: ErrorCode | null;
}

export interface ProbeSummary { run: string; sent: number; answered: number; errors: number; p50_ms: number | null; p99_ms: number | null }

export function newRunId(): string {
  return randomBytes(4).toString('hex');
}

const ERRNO_CODES: Record<string, ErrorCode> = { ECONNREFUSED: 'TCPLENS_ERR_REFUSED', EHOSTUNREACH: 'TCPLENS_ERR_UNREACHABLE', ENETUNREACH: 'TCPLENS_ERR_UNREACHABLE',
  ENOTFOUND: 'TCPLENS_ERR_RESOLVE', EAI_AGAIN: 'TCPLENS_ERR_RESOLVE' };

function once(plan: ProbePlan, run: string, seq: number, inFlight: Set<ClientRequest>): Promise<ProbeResult> {
  const probe = `${run}-${seq}`;
  const started = Date.now();
  const t0 = process.hrtime.bigint();
  const base = { run, probe, seq, time: new Date(started).toISOString() };
  return new Promise((resolve) => {
    const req = httpRequest(plan.url, { method: 'GET', agent: false, headers: { [plan.header]: probe, connection: 'close' }, timeout: plan.timeoutMs }, (res) => {
      const latency = Number(process.hrtime.bigint() - t0) / 1e6;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { if (body.length < 4096) body += d; });
      res.on('end', () => {
        let server: string | null = null;
        try { server = (JSON.parse(body) as { server?: string }).server ?? null; } catch { /* not the lab's JSON */ }
        resolve({ ...base, status: res.statusCode ?? null, latency_ms: Math.round(latency * 1000) / 1000, server, error: null });
      });
      res.on('error', () => resolve({ ...base, status: res.statusCode ?? null, latency_ms: null, server: null, error: 'TCPLENS_ERR_HTTP' }));
    });
    inFlight.add(req);
    req.on('close', () => inFlight.delete(req));
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ...base, status: null, latency_ms: null, server: null,
      error: e.code === 'ETIMEDOUT' ? 'TCPLENS_ERR_TIMEOUT' : plan.signal.aborted ? 'TCPLENS_ERR_INTERRUPTED' : ERRNO_CODES[e.code ?? ''] ?? 'TCPLENS_ERR_HTTP' }));
    req.end();
  });
}

/** Send the run's probes; results come in completion order through onResult. */
export async function sendProbes(plan: ProbePlan, run: string, onResult: (r: ProbeResult) => void): Promise<ProbeSummary> {
  const results: ProbeResult[] = [];
  // One abort listener for the whole run, not one per request (node adds one per request given a
  // signal and warns past ten): a stop ends every request in flight.
  const inFlight = new Set<ClientRequest>();
  const stop = () => { for (const req of inFlight) req.destroy(new Error('interrupted')); };
  plan.signal.addEventListener('abort', stop, { once: true });
  let next = 0;
  const startedAt = Date.now();
  const worker = async () => {
    while (next < plan.count && !plan.signal.aborted) {
      const seq = next++;
      if (plan.rate > 0) {
        const due = startedAt + (seq * 1000) / plan.rate;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        if (plan.signal.aborted) break;
      }
      const r = await once(plan, run, seq, inFlight);
      results.push(r);
      onResult(r);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, plan.count) }, worker));
  } finally {
    plan.signal.removeEventListener('abort', stop);
  }
  const lat = results.map((r) => r.latency_ms).filter((x): x is number => x !== null).sort((a, b) => a - b);
  return { run, sent: results.length, answered: results.filter((r) => r.status !== null).length, errors: results.filter((r) => r.error !== null).length,
    p50_ms: quantile(lat, 0.5), p99_ms: quantile(lat, 0.99) };
}
