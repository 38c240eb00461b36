// Records shaped exactly as the capabilities print them with --json, for collector tests.
export const acceptRecord = (i = 0) => ({
  time: new Date(Date.UTC(2026, 11, 1, 21, 0, 0, i)).toISOString(),
  local: '10.0.0.2:80', peer: '10.0.0.1:40000', client: `192.0.2.${i % 250}:${1024 + i}`,
  toa: { kind: 254, len: 8, source: 'ack', claimed: `192.0.2.${i % 250}:${1024 + i}` },
  trusted: true, malformed: null, count: 1, summary: false, ttl: 64, hops: 0, kernel_ns: 1800,
  pid: 123, comm: 'nginx', cgroup: '/system.slice/nginx.service', netns: 4026531840,
});

export const acceptSummary = () => ({
  ...acceptRecord(1), last: '2026-12-01T21:00:09.500Z', count: 17, summary: true, toa: null, trusted: null, client: null,
  malformed: 'conflict', ttl: null, hops: null, pid: null, comm: null, cgroup: null,
});

export const httpRecord = (i = 0) => ({
  time: new Date(Date.UTC(2026, 11, 1, 21, 0, 1, i)).toISOString(),
  client: '10.1.0.5:51000', server: '10.2.0.7:8080', method: 'GET', host: 'svc.example', path: `/item/${i}`,
  status: 200, req_bytes: 120, resp_bytes: 5000, latency_ms: 1.25, vlan: null,
  tunnel: { type: 'ipip', src: '10.9.0.1', dst: '10.9.0.2' }, probe: null, error: null,
});

export const hopsRecord = (target: string) => ({
  target, address: '127.0.0.1:80', family: 4, status: 'refused', ttl: 64, initial_ttl: 64, hops: 0,
  connect_ms: 0.05, error: 'TCPLENS_ERR_REFUSED',
});

export const hopsSpreadRecord = () => ({
  ...hopsRecord('tcp4://a:80'), probes: 3, replies: 2,
  stats: { ttl: { min: 63, median: 63, max: 64 }, hops: { min: 0, median: 1, max: 1 }, connect_ms: null },
});

/** A ProbeResult as `tcplens probe --json` prints it. */
export const probeRecord = (seq = 1, run = 'run7', server: string | null = 'pod1') => ({
  run, probe: `${run}-${seq}`, seq, time: '2026-12-01T21:00:02.000Z', status: 200, latency_ms: 3.5, server, error: null,
});
