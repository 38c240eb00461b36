import test from 'node:test';
import assert from 'node:assert/strict';
import { HttpPipeline, type HttpPipelineOptions } from '../../src/net/http-pipeline.js';
import type { HttpExchange } from '../../src/net/http1.js';
import { LINKTYPE_ETHERNET } from '../../src/net/link-type.js';
import { TcpConversation, type ConversationSpec, type TimedFrame } from '../helpers/tcp-conversation.js';

const T = { timeout: 10_000 };
const spec: ConversationSpec = { client: '10.0.0.1', server: '10.0.0.2', clientPort: 40000, serverPort: 80 };

function run(frames: TimedFrame[], opts: Partial<HttpPipelineOptions> = {}): { ex: HttpExchange[]; p: HttpPipeline } {
  const ex: HttpExchange[] = [];
  const p = new HttpPipeline({ ports: [80], onExchange: (e) => ex.push(e), ...opts });
  for (const f of frames) p.packet(LINKTYPE_ETHERNET, f.frame, f.frame.length, f.timeMs);
  p.flush();
  return { ex, p };
}

const GET = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: example.test\r\n${extra}\r\n`;
const OK = (body: string, extra = '') => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

test('one exchange: every field of the record', T, () => {
  const c = new TcpConversation(spec).handshake();
  c.send(true, GET('/a?b=1', 'X-Tcplens-Probe: p-42\r\n'));
  const reqEnd = c.timeMs - 1;
  c.wait(7);
  const respStart = c.timeMs;
  c.send(false, OK('hello'));
  c.fin(true).fin(false);
  const { ex, p } = run(c.frames);
  assert.deepEqual(ex, [{
    time: new Date(spec.startMs ?? Date.UTC(2026, 11, 1, 12, 0, 0)).toISOString().replace(/\.\d+Z/, '.003Z'),
    client: '10.0.0.1:40000', server: '10.0.0.2:80', method: 'GET', host: 'example.test', path: '/a?b=1', status: 200,
    req_bytes: 0, resp_bytes: 5, latency_ms: respStart - reqEnd, vlan: null, tunnel: null, probe: 'p-42', error: null,
  }]);
  assert.equal(p.counters.reassembly.flows, 1);
  assert.equal(p.flows, 0, 'closed by the FINs');
});

test('keep-alive, pipelining, chunked bodies, HEAD, 304, 204, 100-continue', T, () => {
  const c = new TcpConversation(spec).handshake();
  c.send(true, GET('/1') + GET('/2') + `HEAD /3 HTTP/1.1\r\nHost: h\r\n\r\n`);
  c.send(false, OK('one') + 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n');
  c.send(false, 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'); // HEAD: no body despite the length
  c.send(true, GET('/4', 'If-None-Match: "x"\r\n'));
  c.send(false, 'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n');
  c.send(true, 'DELETE /5 HTTP/1.1\r\nHost: h\r\n\r\n');
  c.send(false, 'HTTP/1.1 204 No Content\r\n\r\n');
  c.send(true, 'POST /6 HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n');
  c.send(false, 'HTTP/1.1 100 Continue\r\n\r\n');
  c.send(true, '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
  c.send(false, OK('done'));
  c.fin(true).fin(false);
  const { ex } = run(c.frames);
  assert.deepEqual(ex.map((e) => [e.method, e.path, e.status, e.req_bytes, e.resp_bytes, e.error]), [
    ['GET', '/1', 200, 0, 3, null],
    ['GET', '/2', 200, 0, 7, null],
    ['HEAD', '/3', 200, 0, 0, null],
    ['GET', '/4', 304, 0, 0, null],
    ['DELETE', '/5', 204, 0, 0, null],
    ['POST', '/6', 200, 11, 4, null],
  ]);
});

test('a request split over many segments, out of order and retransmitted', T, () => {
  const c = new TcpConversation(spec).handshake();
  const req = c.send(true, 'POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 300\r\n\r\n' + 'x'.repeat(300), 7);
  const resp = c.send(false, OK('y'.repeat(2000)), 100);
  c.fin(true).fin(false);
  const frames = c.frames.slice(0, 3);
  // Requests: reversed order, every third one sent twice.
  const reqFrames = [...req].reverse().flatMap((f, i) => (i % 3 === 0 ? [f, f] : [f]));
  // Response: swap neighbours, and a retransmission of the first segment at the end.
  const respFrames: TimedFrame[] = [];
  for (let i = 0; i < resp.length; i += 2) respFrames.push(...(resp[i + 1] ? [resp[i + 1], resp[i]] : [resp[i]]));
  respFrames.push(resp[0]);
  frames.push(...reqFrames, ...respFrames, ...c.frames.slice(-2));
  const { ex, p } = run(frames);
  assert.equal(ex.length, 1);
  assert.deepEqual([ex[0].method, ex[0].path, ex[0].status, ex[0].req_bytes, ex[0].resp_bytes, ex[0].error], ['POST', '/upload', 200, 300, 2000, null]);
  assert.ok(p.counters.reassembly.retransmittedSegments > 0);
  assert.equal(p.counters.reassembly.gaps, 0);
});

test('body until close, and no response before a FIN', T, () => {
  const c = new TcpConversation(spec).handshake();
  c.send(true, 'GET /stream HTTP/1.0\r\n\r\n');
  c.send(false, 'HTTP/1.0 200 OK\r\n\r\n' + 'z'.repeat(5000));
  c.fin(false).fin(true);
  const c2 = TcpConversation.simple({ ...spec, clientPort: 40001 }, []);
  c2.frames.splice(3, 0, ...new TcpConversation({ ...spec, clientPort: 40001, clientIsn: 1001 }).send(true, GET('/lost')));
  const { ex } = run([...c.frames, ...c2.frames]);
  assert.deepEqual(ex.map((e) => [e.path, e.status, e.resp_bytes, e.error]), [['/stream', 200, 5000, null], ['/lost', null, 0, 'no_response']]);
});

test('reset, gap, and a flush with open exchanges', T, () => {
  const a = new TcpConversation(spec).handshake();
  a.send(true, GET('/reset'));
  a.rst(false);
  const b = new TcpConversation({ ...spec, clientPort: 40010 }).handshake();
  b.send(true, GET('/g1'));
  const lost = b.send(false, OK('a'.repeat(3000)), 1000);
  b.send(true, GET('/g2'));
  b.send(false, OK('bb'));
  const bFrames = b.frames.filter((f) => f !== lost[1]);
  const open = new TcpConversation({ ...spec, clientPort: 40020 }).handshake();
  open.send(true, GET('/open'));
  const { ex, p } = run([...a.frames, ...bFrames, ...open.frames]);
  const by = Object.fromEntries(ex.map((e) => [e.path, e]));
  assert.equal(by['/reset'].error, 'reset');
  assert.equal(by['/g1'].error, 'gap');
  assert.equal(by['/g1'].status, 200, 'the headers came before the hole');
  assert.deepEqual([by['/g2'].status, by['/g2'].resp_bytes, by['/g2'].error], [200, 2, null], 're-synchronised at the next status line');
  assert.equal(by['/open'].error, 'no_response');
  assert.equal(p.counters.reassembly.gaps, 1);
  assert.deepEqual(p.summary(), { packets: a.frames.length + bFrames.length + open.frames.length, bytes: p.counters.bytes, skipped: 0, filtered_out: 0,
    flows: 3, exchanges: 4, incomplete: 3, parse_errors: 0, evictions: 0, gaps: 1 });
});

test('VLAN, QinQ, IPIP and IPv6 connections carry their context; IPv6 endpoints in brackets', T, () => {
  const ex = run([
    ...TcpConversation.simple({ ...spec, vlans: [100] }, [[GET('/vlan'), OK('v')]]).frames,
    ...TcpConversation.simple({ ...spec, vlans: [200, 300] }, [[GET('/qinq'), OK('q')]]).frames,
    ...TcpConversation.simple({ ...spec, tunnel: { type: 'ipip', src: '192.168.0.1', dst: '192.168.0.9' } }, [[GET('/ipip'), OK('i')]]).frames,
    ...TcpConversation.simple({ client: 'fd00::1', server: 'fd00::2', clientPort: 40000, serverPort: 80 }, [[GET('/v6'), OK('6')]]).frames,
    ...TcpConversation.simple({ client: 'fd00::1', server: 'fd00::2', clientPort: 40000, serverPort: 80, tunnel: { type: 'sit', src: '192.168.0.1', dst: '192.168.0.9' } }, [[GET('/sit'), OK('s')]]).frames,
  ]).ex;
  const by = Object.fromEntries(ex.map((e) => [e.path, e]));
  assert.equal(ex.length, 5);
  assert.equal(by['/vlan'].vlan, 100);
  assert.equal(by['/qinq'].vlan, 200, 'outermost tag');
  assert.deepEqual(by['/ipip'].tunnel, { type: 'ipip', src: '192.168.0.1', dst: '192.168.0.9' });
  assert.equal(by['/ipip'].client, '10.0.0.1:40000');
  assert.deepEqual([by['/v6'].client, by['/v6'].server], ['[fd00::1]:40000', '[fd00::2]:80']);
  assert.deepEqual(by['/sit'].tunnel, { type: 'sit', src: '192.168.0.1', dst: '192.168.0.9' });
  for (const e of ex) assert.equal(e.error, null);
});

test('smuggling shapes are parse errors of that connection only', T, () => {
  const bad = [
    'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: h\r\n X: folded\r\n\r\n',
    'GET / HTTP/1.1\nHost: h\n\n',
  ];
  const frames = bad.flatMap((req, i) => TcpConversation.simple({ ...spec, clientPort: 41000 + i }, [[req, OK('no')]]).frames);
  frames.push(...TcpConversation.simple({ ...spec, clientPort: 42000 }, [[GET('/fine'), OK('ok')]]).frames);
  const { ex, p } = run(frames);
  assert.equal(p.counters.http.parseErrors, bad.length);
  assert.deepEqual(ex.filter((e) => e.error === 'parse_error').length, bad.length);
  const fine = ex.find((e) => e.path === '/fine')!;
  assert.deepEqual([fine.status, fine.error], [200, null]);
});

test('a huge header block is cut off at the limit; binary garbage and TLS on the port are parse errors', T, () => {
  const huge = `GET /big HTTP/1.1\r\nHost: h\r\n${'X-Pad: '.padEnd(1000, 'p')}\r\n`.repeat(1) + `X-More: ${'m'.repeat(200_000)}\r\n\r\n`;
  const tls = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, ...Array(100).fill(7)]);
  const garbage = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) & 0xff));
  const frames = [
    ...TcpConversation.simple({ ...spec, clientPort: 43000 }, [[huge, OK('x')]]).frames,
    ...TcpConversation.simple({ ...spec, clientPort: 43001 }, [[tls.toString('latin1'), '']]).frames,
    ...TcpConversation.simple({ ...spec, clientPort: 43002 }, [[garbage.toString('latin1'), garbage.toString('latin1')]]).frames,
  ];
  const { ex, p } = run(frames, { http: { maxHeaderBytes: 16 * 1024 } });
  assert.equal(p.counters.http.headerTooLarge, 1);
  assert.equal(p.counters.http.parseErrors, 3);
  assert.deepEqual(ex.map((e) => [e.path.slice(0, 4), e.error]), [['/big', 'parse_error']]);
});

test('Upgrade and CONNECT: the exchange is reported, then the connection is not parsed', T, () => {
  const ws = TcpConversation.simple(spec, [
    ['GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello'],
    ['\x81\x85garbage-after-upgrade', '\x81\x02ok'],
  ]);
  const tunnel = TcpConversation.simple({ ...spec, clientPort: 40100 }, [
    ['CONNECT backend:443 HTTP/1.1\r\nHost: backend:443\r\n\r\n', 'HTTP/1.1 200 Connection Established\r\n\r\n'],
    ['\x16\x03\x01 tls bytes', '\x16\x03\x03 more tls'],
  ]);
  const { ex, p } = run([...ws.frames, ...tunnel.frames]);
  assert.deepEqual(ex.map((e) => [e.method, e.path, e.status, e.error]), [['GET', '/ws', 101, null], ['CONNECT', 'backend:443', 200, null]]);
  assert.equal(p.counters.http.parseErrors, 0);
  assert.equal(p.counters.http.upgrades, 2);
});

test('capture started mid-connection: no SYN, the server side known by its port', T, () => {
  const c = TcpConversation.simple(spec, [[GET('/first'), OK('1')], [GET('/second'), OK('22')]]);
  // Drop the handshake and the first request's first half-segment: start inside /first.
  const frames = c.frames.slice(3);
  const { ex } = run(frames);
  assert.deepEqual(ex.map((e) => [e.client, e.server, e.path, e.status]), [['10.0.0.1:40000', '10.0.0.2:80', '/first', 200], ['10.0.0.1:40000', '10.0.0.2:80', '/second', 200]]);
});

test('an upgrade the server ignores (h2c answered with 200): the next requests on the connection are parsed', T, () => {
  const c = new TcpConversation(spec).handshake();
  c.send(true, 'GET /h2c HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n' + GET('/pipelined'));
  c.send(false, OK('plain') + OK('second'));
  c.send(true, GET('/after'));
  c.send(false, 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  c.fin(true).fin(false);
  const { ex, p } = run(c.frames);
  assert.deepEqual(ex.map((e) => [e.path, e.status, e.resp_bytes, e.error]), [['/h2c', 200, 5, null], ['/pipelined', 200, 6, null], ['/after', 404, 0, null]]);
  assert.equal(p.counters.http.upgrades, 0);
});

test('a request lost in a gap: its response is not paired with the next request', T, () => {
  const c = new TcpConversation(spec).handshake();
  c.send(true, GET('/seen1'));
  c.send(false, OK('1'));
  const lost = c.send(true, GET('/lost'));
  c.wait(3);
  c.send(false, OK('22'));
  c.wait(3);
  c.send(true, GET('/seen2'));
  c.send(false, OK('333'));
  c.fin(true).fin(false);
  const { ex, p } = run(c.frames.filter((f) => f !== lost[0]));
  assert.deepEqual(ex.map((e) => [e.path, e.status, e.resp_bytes, e.error]), [['/seen1', 200, 1, null], ['/seen2', 200, 3, null]]);
  assert.equal(p.counters.http.unpairedResponses, 1);
  assert.equal(p.counters.reassembly.gaps, 1);
});
