// Joining a gateway's inbound and outbound legs: by probe id exactly, else by method, path and timing.
import test from 'node:test';
import assert from 'node:assert/strict';
import { joinLegs } from '../../src/capabilities/http/legs.js';
import type { HttpExchange } from '../../src/net/http1.js';

const T = { timeout: 5000 };
const t0 = Date.parse('2026-12-01T10:00:00.000Z');

function ex(atMs: number, latency: number | null, over: Partial<HttpExchange> = {}): HttpExchange {
  return { time: new Date(t0 + atMs).toISOString(), client: '10.0.0.1:40000', server: '10.0.0.2:80', method: 'GET', host: 'svc', path: '/',
    status: 200, req_bytes: 0, resp_bytes: 3, latency_ms: latency, vlan: null, tunnel: null, probe: null, error: null, ...over };
}

test('probe ids join exactly, whatever the timing, and give the gateway its share', T, () => {
  const i = [ex(0, 10, { probe: 'r1-1' }), ex(1, 12, { probe: 'r1-2' })];
  const o = [ex(3, 4, { probe: 'r1-2' }), ex(2, 7, { probe: 'r1-1' })];
  const j = joinLegs(i, o);
  assert.deepEqual(j.joined.map((x) => [x.inbound.probe, x.outbound.probe, x.by, x.gateway_ms]), [['r1-1', 'r1-1', 'probe', 3], ['r1-2', 'r1-2', 'probe', 8]]);
  assert.deepEqual([j.inboundOnly.length, j.outboundOnly.length], [0, 0]);
});

test('without probes: same method and path, inside the inbound window, earliest first', T, () => {
  const i = [ex(0, 20, { path: '/a' }), ex(5, 30, { path: '/b' })];
  const o = [ex(8, 10, { path: '/b' }), ex(2, 5, { path: '/a' }), ex(50, 1, { path: '/a' })];
  const j = joinLegs(i, o);
  assert.deepEqual(j.joined.map((x) => [x.inbound.path, x.outbound.time.slice(20), x.by, x.gateway_ms]), [['/a', '002Z', 'timing', 15], ['/b', '008Z', 'timing', 20]]);
  assert.deepEqual(j.outboundOnly.map((x) => x.time.slice(20)), ['050Z'], 'an outbound request after the inbound answer left is not its leg');
});

test('an inbound request the gateway never forwarded (answered itself) stays alone', T, () => {
  const j = joinLegs([ex(0, 1, { status: 404 })], []);
  assert.equal(j.inboundOnly.length, 1);
  assert.equal(j.joined.length, 0);
});
