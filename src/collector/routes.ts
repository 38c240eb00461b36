// The query routes beyond GET /v1/events: each parses its query string into a checked query,
// builds parameterised SQL (queries/*.ts, pure and unit-tested) and shapes the rows into its
// answer. server.ts dispatches to them after the token check.
import type { AgentRuns } from './agent-runs.js';
import type { CollectorStore } from './store-api.js';
import { buildAgents, parseAgents, shapeAgents } from './queries/agents.js';
import { balanceRows, parseBalance, shapeBalance } from './queries/balance.js';
import { buildSeries, buildTopClients, parseSeries, parseTopClients, shapeSeries, shapeTopClients } from './queries/connections.js';
import { buildHops, parseHops, shapeHops } from './queries/hops.js';
import { buildProbeSent, buildProbeSightings, parseProbes, shapeProbes } from './queries/probes.js';
import type { BuiltQuery } from './query.js';

export interface RouteContext { store: CollectorStore; agentRuns: AgentRuns | null }

type Handler = (params: URLSearchParams, ctx: RouteContext) => Promise<unknown>;

const read = (ctx: RouteContext, q: BuiltQuery) => ctx.store.read(q.sql, q.params);
const d = (ctx: RouteContext) => ctx.store.dialect;

export const QUERY_ROUTES: Record<string, Handler> = {
  'GET /v1/clients/top': async (p, ctx) => shapeTopClients(await read(ctx, buildTopClients(parseTopClients(p), d(ctx)))),
  'GET /v1/connections/series': async (p, ctx) => {
    const q = parseSeries(p);
    return shapeSeries(q, await read(ctx, buildSeries(q, d(ctx))));
  },
  'GET /v1/balance': async (p, ctx) => {
    const q = parseBalance(p);
    return shapeBalance(q, await balanceRows(q, ctx.store));
  },
  'GET /v1/probes': async (p, ctx) => {
    const q = parseProbes(p);
    return shapeProbes(q, await read(ctx, buildProbeSent(q, d(ctx))), await read(ctx, buildProbeSightings(q, d(ctx))));
  },
  'GET /v1/hops/distribution': async (p, ctx) => shapeHops(await read(ctx, buildHops(parseHops(p), d(ctx)))),
  'GET /v1/agents': async (p, ctx) => {
    const q = parseAgents(p);
    await ctx.agentRuns?.flush();
    return shapeAgents(await read(ctx, buildAgents(q, d(ctx))));
  },
};
