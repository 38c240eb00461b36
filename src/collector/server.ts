// The collector's HTTP API on node:http: ingest (POST /v1/events), query (GET /v1/events and the
// routes of routes.ts) and Prometheus metrics (GET /metrics). Every refusal is a JSON error with a
// TCPLENS_ERR_ code; a refused body is not parsed on (it is read and dropped for at most 5 s after
// the answer, then the connection closes).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { isTcplensError, TcplensError, type ErrorCode } from '../errors.js';
import { capabilitySchema, CAPABILITIES } from './schema.js';
import { parseEventQuery } from './query.js';
import { readNdjsonBody } from './ndjson-body.js';
import type { CollectorMetrics } from './metrics.js';
import type { CollectorStore } from './store-api.js';
import { agentReportOf, type AgentRuns } from './agent-runs.js';
import { checkIdentity, storeBatch } from './ingest-batch.js';
import { QUERY_ROUTES } from './routes.js';
import { staticFile } from './web/static.js';

export interface ServerOptions {
  store: CollectorStore;
  metrics: CollectorMetrics;
  /** bearer token required on every route; null: none (loopback only, the CLI sees to that) */
  token: string | null;
  maxBodyBytes: number;
  /** what agents report about themselves (version, drops), for GET /v1/agents */
  agentRuns: AgentRuns;
}

export const DEFAULT_MAX_BODY = 16 * 1024 * 1024;

const STATUS: Partial<Record<ErrorCode, number>> = {
  TCPLENS_ERR_BAD_EVENT: 400, TCPLENS_ERR_BAD_QUERY: 400, TCPLENS_ERR_UNKNOWN_CAPABILITY: 400,
  TCPLENS_ERR_UNAUTHORIZED: 401, TCPLENS_ERR_NOT_FOUND: 404, TCPLENS_ERR_TOO_LARGE: 413,
  // The store failing is the collector's trouble, not the batch's: agents retry a 503.
  TCPLENS_ERR_STORE: 503,
};

function sendJson(res: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(close && { connection: 'close' }) });
  res.end(text);
}

function errorBody(e: unknown): { status: number; code: ErrorCode; body: unknown } {
  if (isTcplensError(e)) {
    return { status: STATUS[e.code] ?? 500, code: e.code, body: { error: { code: e.code, message: e.message, hint: e.hint } } };
  }
  const message = (e as Error)?.message ?? String(e);
  return { status: 500, code: 'TCPLENS_ERR_INTERNAL', body: { error: { code: 'TCPLENS_ERR_INTERNAL', message, hint: 'this is a bug in tcplens; the collector log has the request' } } };
}

function authorized(req: IncomingMessage, token: string | null): boolean {
  if (token === null) return true;
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const got = Buffer.from(m[1]), want = Buffer.from(token);
  return got.length === want.length && timingSafeEqual(got, want);
}

export function createCollectorServer(opts: ServerOptions): Server {
  const server = createServer((req, res) => {
    handle(req, res, opts).catch((e) => {
      const { status, code, body } = errorBody(e);
      opts.metrics.reject(code);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, status, body);
      // A refused body still on its way is read and dropped for a moment before the socket goes:
      // closing with unread data makes the kernel answer with a reset, and a reset can wipe our
      // answer from the client's receive queue before the client reads it (a lingering close).
      if (!req.complete) {
        req.resume();
        const linger = setTimeout(() => req.socket.destroy(), 5000);
        linger.unref();
        req.once('end', () => clearTimeout(linger));
      }
    });
  });
  server.requestTimeout = 120_000;
  server.headersTimeout = 30_000;
  return server;
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: ServerOptions): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://collector');
  const route = `${req.method} ${url.pathname}`;
  // The web page (no data in it, so no token: the page asks for one and sends it with its queries).
  const page = req.method === 'GET' ? await staticFile(url.pathname) : null;
  if (page) {
    res.writeHead(200, { ...page.headers, 'content-length': page.body.length });
    return void res.end(page.body);
  }
  const known = ['POST /v1/events', 'GET /v1/events', 'GET /metrics', ...Object.keys(QUERY_ROUTES)];
  if (!known.includes(route)) {
    const path = known.find((k) => k.endsWith(` ${url.pathname}`));
    throw new TcplensError('TCPLENS_ERR_NOT_FOUND', path ? `${req.method} is not served on ${url.pathname}` : `no route ${url.pathname.slice(0, 80)}`,
      `routes: ${known.join(', ')}`);
  }
  if (!authorized(req, opts.token)) {
    throw new TcplensError('TCPLENS_ERR_UNAUTHORIZED', req.headers.authorization ? 'wrong token' : 'this collector needs a bearer token',
      'send Authorization: Bearer <token> (agents: --token-file F, with the collector\'s token)');
  }
  if (route === 'POST /v1/events') return ingest(req, res, url, opts);
  if (route === 'GET /v1/events') {
    const events = await opts.store.query(parseEventQuery(url.searchParams));
    return sendJson(res, 200, { events });
  }
  const query = Object.hasOwn(QUERY_ROUTES, route) ? QUERY_ROUTES[route] : undefined;
  if (query) return sendJson(res, 200, await query(url.searchParams, opts));
  res.writeHead(200, { 'content-type': opts.metrics.registry.contentType });
  res.end(await opts.metrics.registry.metrics());
}

async function ingest(req: IncomingMessage, res: ServerResponse, url: URL, opts: ServerOptions): Promise<void> {
  const started = process.hrtime.bigint();
  const p = url.searchParams;
  const cap = p.get('capability');
  const capLabel = cap !== null && Object.hasOwn(CAPABILITIES, cap) ? cap : 'unknown';
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  try {
    const schema = capabilitySchema(cap);
    const agent = p.get('agent') ?? '';
    const batch = p.get('batch') ?? '';
    checkIdentity(agent, batch, { agent: 'agent=', batch: 'batch=', agentHint: 'agents default to the host name; set one with --agent-name',
      batchHint: 'tcplens agents send RUN-SEQUENCE; the same id again means a retry' });
    const report = agentReportOf(p);
    const rows = await readNdjsonBody(req, schema, opts.maxBodyBytes);
    const outcome = await storeBatch(opts, { agent, schema, batch, rows, report }, seconds);
    sendJson(res, 200, { batch, events: rows.length, duplicate: outcome === 'duplicate' });
  } catch (e) {
    opts.metrics.batch(capLabel, 'rejected', 0, seconds());
    throw e;
  }
}
