// Offline decode throughput: a generated capture of many keep-alive and pipelined connections is
// read from a file in 64 KiB chunks through CaptureReader -> HttpPipeline, and the rate is printed
// next to `tcpdump -r FILE -w /dev/null` (the raw read floor) from the same run.
//   node dist/bench/http/decode-throughput.js [megabytes=50] [largest body bytes=12000]
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureReader } from '../../src/net/capture-reader.js';
import { HttpPipeline } from '../../src/net/http-pipeline.js';
import { PcapWriter } from '../../src/net/pcap.js';
import { pcapRecord, TcpConversation } from '../../test/helpers/tcp-conversation.js';

const targetBytes = Number(process.argv[2] ?? 50) * 1e6;
const bodySpread = Number(process.argv[3] ?? 12000);

function generate(): { file: string; dir: string; requests: number } {
  const w = new PcapWriter({ nanosecond: true });
  const parts: Buffer[] = [w.header()];
  let size = parts[0].length, requests = 0, conn = 0;
  const t0 = Date.UTC(2026, 11, 1, 10, 0, 0);
  while (size < targetBytes) {
    // 64 connections at a time, their frames interleaved by time as on a busy gateway.
    const batch: TcpConversation[] = [];
    for (let k = 0; k < 64; k++, conn++) {
      const c = new TcpConversation({ client: `10.${(conn >> 8) & 255}.${conn & 255}.1`, server: '10.200.0.1', clientPort: 20000 + (conn % 40000), serverPort: 80,
        startMs: t0 + conn * 7, stepMs: 1, vlans: conn % 4 === 0 ? [100] : undefined,
        tunnel: conn % 3 === 0 ? { type: 'ipip', src: '172.16.0.1', dst: '172.16.1.1' } : undefined }).handshake();
      for (let i = 0; i < 8; i++) {
        const body = 'b'.repeat(20 + ((conn * 31 + i * 977) % bodySpread));
        const req = `GET /api/v1/items/${conn}/${i}?q=${i * 7} HTTP/1.1\r\nHost: svc.test\r\nUser-Agent: bench\r\nAccept: */*\r\nX-Tcplens-Probe: p${i}\r\n\r\n`;
        const resp = i % 3 === 2
          ? `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`
          : `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
        if (i % 4 === 3) { c.send(true, req + req.replace(`/${i}?`, `/${i}b?`)); c.send(false, resp + resp); requests += 2; }
        else { c.send(true, req); c.wait(2); c.send(false, resp, 1448); requests++; }
      }
      batch.push(c.fin(true).fin(false));
    }
    for (const f of batch.flatMap((c) => c.frames).sort((a, b) => a.timeMs - b.timeMs)) {
      const rec = pcapRecord(w, f);
      parts.push(rec);
      size += rec.length;
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-bench-'));
  const file = join(dir, 'bench.pcap');
  writeFileSync(file, Buffer.concat(parts));
  return { file, dir, requests };
}

async function decode(file: string): Promise<{ seconds: number; exchanges: number; pipeline: HttpPipeline }> {
  let exchanges = 0;
  const t = process.hrtime.bigint();
  const pipeline = new HttpPipeline({ ports: [80], onExchange: () => { exchanges++; } });
  const reader = new CaptureReader((r) => pipeline.record(r));
  for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) reader.push(chunk as Buffer);
  reader.end();
  pipeline.flush();
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, exchanges, pipeline };
}

const { file, dir, requests } = generate();
try {
  const mb = statSync(file).size / 1e6;
  await decode(file); // warm-up (JIT, page cache)
  const runs = [await decode(file), await decode(file), await decode(file)];
  const best = runs.reduce((a, b) => (a.seconds < b.seconds ? a : b));
  const t = process.hrtime.bigint();
  execFileSync('tcpdump', ['-r', file, '-w', '/dev/null'], { stdio: 'ignore' });
  const tcpdumpS = Number(process.hrtime.bigint() - t) / 1e9;
  const c = best.pipeline.counters;
  console.log(`capture: ${mb.toFixed(1)} MB, ${c.packets} packets, ${requests} requests generated`);
  console.log(`tcplens decode: ${best.seconds.toFixed(3)} s = ${(mb / best.seconds).toFixed(1)} MB/s, ${(c.packets / best.seconds / 1e3).toFixed(0)} k packets/s, ${(best.exchanges / best.seconds / 1e3).toFixed(1)} k exchanges/s (best of 3)`);
  console.log(`exchanges: ${best.exchanges} (incomplete ${c.incompleteExchanges}, parse errors ${c.http.parseErrors}, gaps ${c.reassembly.gaps})`);
  console.log(`tcpdump -r -w /dev/null: ${tcpdumpS.toFixed(3)} s = ${(mb / tcpdumpS).toFixed(1)} MB/s; tcplens/tcpdump time ratio ${(best.seconds / tcpdumpS).toFixed(2)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
