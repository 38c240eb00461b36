// Connections covering what `tcplens http` must decode, as frames, with the exchange each should
// yield (path -> status and error). Used by the capture-file tests; the throughput bench builds
// its large capture from many keep-alive and pipelined connections the same way.
import { TcpConversation, type ConversationSpec, type TimedFrame } from './tcp-conversation.js';

export interface ExpectedExchange { path: string; status: number | null; error: string | null; vlan?: number | null; tunnel?: boolean; resp_bytes?: number }

const GET = (path: string, host = 'svc.test') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
const OK = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

let port = 30000;
const next = (over: Partial<ConversationSpec> = {}): ConversationSpec => ({ client: '10.1.0.1', server: '10.2.0.1', clientPort: port++, serverPort: 80, stepMs: 1, ...over });

export function httpFixture(startMs = Date.UTC(2026, 11, 1, 9, 0, 0)): { frames: TimedFrame[]; expected: ExpectedExchange[] } {
  port = 30000;
  const convs: TcpConversation[] = [];
  const expected: ExpectedExchange[] = [];
  const add = (c: TcpConversation, ...e: ExpectedExchange[]) => { convs.push(c); expected.push(...e); };
  const at = (i: number) => ({ startMs: startMs + i * 3 });
  add(TcpConversation.simple(next({ ...at(0), vlans: [42] }), [[GET('/vlan'), OK('v')]]), { path: '/vlan', status: 200, error: null, vlan: 42 });
  add(TcpConversation.simple(next({ ...at(1), vlans: [10, 20] }), [[GET('/qinq'), OK('q')]]), { path: '/qinq', status: 200, error: null, vlan: 10 });
  add(TcpConversation.simple(next({ ...at(2), tunnel: { type: 'ipip', src: '172.16.0.1', dst: '172.16.0.2' } }), [[GET('/ipip'), OK('i')]]), { path: '/ipip', status: 200, error: null, tunnel: true });
  add(TcpConversation.simple(next({ ...at(3), client: 'fd00::1', server: 'fd00::2' }), [[GET('/ipv6'), OK('6')]]), { path: '/ipv6', status: 200, error: null });
  add(TcpConversation.simple(next(at(4)), [[GET('/ka1'), OK('a')], [GET('/ka2'), 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n0\r\n\r\n']]),
    { path: '/ka1', status: 200, error: null }, { path: '/ka2', status: 200, error: null, resp_bytes: 5 });
  add(TcpConversation.simple(next(at(5)), [[GET('/p1') + GET('/p2') + 'HEAD /p3 HTTP/1.1\r\nHost: h\r\n\r\n', OK('1') + OK('22') + 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n']]),
    { path: '/p1', status: 200, error: null }, { path: '/p2', status: 200, error: null }, { path: '/p3', status: 200, error: null, resp_bytes: 0 });
  add(TcpConversation.simple(next(at(6)), [[GET('/etag'), 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n']]), { path: '/etag', status: 304, error: null });
  // Split into 3-byte segments, then shuffled and partly duplicated below.
  const split = TcpConversation.simple(next(at(7)), [[`POST /split HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n${'s'.repeat(20)}`, OK('o'.repeat(3000))]], 3);
  const f = split.frames;
  const mid = f.slice(3, -2);
  for (let i = 0; i + 1 < mid.length; i += 3) [mid[i], mid[i + 1]] = [mid[i + 1], mid[i]];
  split.frames.splice(3, mid.length, ...mid.flatMap((x, i) => (i % 5 === 0 ? [x, x] : [x])));
  add(split, { path: '/split', status: 200, error: null, resp_bytes: 3000 });
  const close = new TcpConversation(next(at(8))).handshake();
  close.send(true, 'GET /until-close HTTP/1.0\r\n\r\n');
  close.send(false, 'HTTP/1.0 200 OK\r\n\r\n' + 'c'.repeat(4000));
  close.fin(false).fin(true);
  add(close, { path: '/until-close', status: 200, error: null, resp_bytes: 4000 });
  add(TcpConversation.simple(next(at(9)), [['POST /clte HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', OK('x')]]), { path: '/clte', status: null, error: 'parse_error' });
  add(TcpConversation.simple(next(at(10)), [['POST /twocl HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', OK('x')]]), { path: '/twocl', status: null, error: 'parse_error' });
  add(TcpConversation.simple(next(at(11)), [[`GET /hugehdr HTTP/1.1\r\nHost: h\r\nX-Big: ${'b'.repeat(100_000)}\r\n\r\n`, OK('x')]]), { path: '/hugehdr', status: null, error: 'parse_error' });
  add(TcpConversation.simple(next(at(12)), [[Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 131 + 7) & 0xff)).toString('latin1'), 'junk']]));
  add(TcpConversation.simple(next(at(13)), [['\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03' + 'r'.repeat(160), '\x16\x03\x03\x00\x31\x02\x00']]));
  const unanswered = new TcpConversation(next(at(14))).handshake();
  unanswered.send(true, GET('/unanswered'));
  add(unanswered, { path: '/unanswered', status: null, error: 'no_response' });
  const frames = convs.flatMap((c) => c.frames).sort((a, b) => a.timeMs - b.timeMs);
  return { frames, expected };
}
