// `tcplens http --read` through the real CLI (no root needed): the JSON fields are exactly those of
// issue 10 with the values the pipeline computes in-process; --read - reads stdin; --write then
// --read gives the same exchanges; `| head -1` ends cleanly; bad input is a coded error with the
// exchanges before it still printed.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cliForAnyone, cliPath, runTcplens } from '../kernel/helpers/tcplens-cli.js';
import { httpFixture } from '../helpers/http-fixture.js';
import { pcapOf } from '../helpers/tcp-conversation.js';
import { HttpPipeline } from '../../src/net/http-pipeline.js';
import type { HttpExchange } from '../../src/net/http1.js';
import { PcapWriter } from '../../src/net/pcap.js';

const FIELDS = ['time', 'client', 'server', 'method', 'host', 'path', 'status', 'req_bytes', 'resp_bytes', 'latency_ms', 'vlan', 'tunnel', 'probe', 'error'];

function fixtureFile(dir: string): { file: string; pcap: Buffer; inProcess: HttpExchange[] } {
  const { frames } = httpFixture();
  const pcap = pcapOf(frames);
  const file = join(dir, 'fixture.pcap');
  writeFileSync(file, pcap);
  const inProcess: HttpExchange[] = [];
  const p = new HttpPipeline({ ports: [80], onExchange: (e) => inProcess.push(JSON.parse(JSON.stringify(e))) });
  for (const f of frames) p.packet(1, f.frame, f.frame.length, f.timeMs);
  p.flush();
  return { file, pcap, inProcess };
}

async function withStdin(args: string[], input: Buffer): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [cliPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  proc.stdin.on('error', () => {});
  proc.stdin.end(input);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30000);
  const [code] = await once(proc, 'exit');
  clearTimeout(timer);
  return { code, stdout, stderr };
}

const lines = (s: string) => s.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const noStack = (stderr: string) => assert.doesNotMatch(stderr, /^\s+at .*:\d+:\d+\)?$/m, 'no stack trace');

test('--read FILE --json: exactly the issue\'s fields, the values the pipeline computes, and a summary', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-e2e-http-'));
  try {
    const { file, inProcess } = fixtureFile(dir);
    const r = await runTcplens(['http', '--read', file, '--port', '80', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const got = lines(r.stdout);
    assert.equal(got.length, 16);
    for (const e of got) assert.deepEqual(Object.keys(e), FIELDS);
    assert.deepEqual(got, inProcess);
    const vlan = got.find((e) => e.path === '/vlan')!;
    assert.equal(vlan.vlan, 42);
    assert.equal(vlan.time, '2026-12-01T09:00:00.003Z');
    assert.deepEqual(got.find((e) => e.path === '/ipip')!.tunnel, { type: 'ipip', src: '172.16.0.1', dst: '172.16.0.2' });
    assert.equal(got.find((e) => e.path === '/ipv6')!.client, '[fd00::1]:30003');
    assert.equal(got.find((e) => e.path === '/unanswered')!.error, 'no_response');
    assert.match(r.stderr, /tcplens http: summary packets=1420 bytes=\d+ flows=15 exchanges=16 incomplete=4 parse_errors=5 evictions=0/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--port and --host filter a file with the kernel filter\'s rules', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-e2e-http-'));
  try {
    const { file } = fixtureFile(dir);
    assert.equal(lines((await runTcplens(['http', '--read', file, '--port', '8080', '--json'])).stdout).length, 0);
    const v6 = lines((await runTcplens(['http', '--read', file, '--host', 'fd00::/64', '--json'])).stdout);
    assert.deepEqual(v6.map((e) => e.path), ['/ipv6']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--read - reads standard input; --write then --read gives the same exchanges; the table has a row each', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-e2e-http-'));
  try {
    const { file, pcap, inProcess } = fixtureFile(dir);
    const fromStdin = await withStdin(['http', '--read', '-', '--json'], pcap);
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.deepEqual(lines(fromStdin.stdout), inProcess);
    const copy = join(dir, 'kept.pcap');
    const w = await runTcplens(['http', '--read', file, '--port', '80', '--write', copy, '--json']);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stderr, /written=1420/);
    assert.equal(readFileSync(copy).readUInt32LE(0), 0xa1b23c4d, 'a nanosecond pcap');
    const again = await runTcplens(['http', '--read', copy, '--json']);
    assert.deepEqual(lines(again.stdout), inProcess);
    const table = await runTcplens(['http', '--read', file]);
    const rows = table.stdout.trim().split('\n');
    assert.match(rows[0], /^TIME\s+CLIENT\s+SERVER\s+METHOD\s+STATUS/);
    assert.equal(rows.length, 17);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('`| head -1` ends the command cleanly: one line, exit 0, a summary, no error', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-e2e-http-'));
  try {
    // A big capture, so that head closes the pipe long before the end of the file.
    const { frames } = httpFixture();
    const many = Array.from({ length: 200 }, () => frames).flat();
    const file = join(dir, 'big.pcap');
    writeFileSync(file, pcapOf(many, new PcapWriter({ nanosecond: true })));
    // pipefail: the exit code is tcplens's, not head's.
    const proc = spawn('bash', ['-c', `set -o pipefail; "${process.execPath}" "${cliPath}" http --read "${file}" --json | head -1`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    const [code] = await once(proc, 'exit');
    assert.equal(code, 0);
    const out = stdout.trim().split('\n');
    assert.equal(out.length, 1, stdout);
    assert.equal((JSON.parse(out[0]) as { path: string }).path, '/vlan');
    assert.match(stderr, /tcplens http: summary/);
    assert.doesNotMatch(stderr, /TCPLENS_ERR|internal error|EPIPE/);
    noStack(stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input: a coded error and a hint, the exchanges before it still printed', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-e2e-http-'));
  try {
    const { pcap } = fixtureFile(dir);
    const cut = await withStdin(['http', '--read', '-', '--json'], pcap.subarray(0, 3000));
    assert.equal(cut.code, 2);
    assert.match(cut.stderr, /TCPLENS_ERR_PCAP: the capture is cut short/);
    assert.match(cut.stderr, /hint: /);
    assert.ok(lines(cut.stdout).some((e) => e.path === '/vlan' && e.status === 200), 'decoded before the cut');
    noStack(cut.stderr);

    const unknownLink = Buffer.from(pcap.subarray(0, 24));
    unknownLink.writeUInt32LE(147, 20); // LINKTYPE_USER0
    const link = await withStdin(['http', '--read', '-'], unknownLink);
    assert.equal(link.code, 2);
    assert.match(link.stderr, /TCPLENS_ERR_PCAP: link type 147 is not supported/);

    const garbage = await withStdin(['http', '--read', '-'], Buffer.from('this is not a capture at all'));
    assert.match(garbage.stderr, /TCPLENS_ERR_PCAP: input is neither pcap nor pcapng/);

    const corrupt = Buffer.from(pcap);
    corrupt.writeUInt32LE(0x7fffffff, 24 + 8); // the first record claims 2 GB
    const big = await withStdin(['http', '--read', '-'], corrupt);
    assert.equal(big.code, 2);
    assert.match(big.stderr, /TCPLENS_ERR_PCAP/);
    noStack(big.stderr);

    const missing = await runTcplens(['http', '--read', join(dir, 'nope.pcap')]);
    assert.match(missing.stderr, /TCPLENS_ERR_PCAP: cannot read .*no such file/);
    for (const [args, code] of [
      [['http', '--read', '-', '--port', '0'], 'TCPLENS_ERR_BAD_PORT'],
      [['http', '--read', '-', '--host', '10.0.0.0/33'], 'TCPLENS_ERR_BAD_CIDR'],
      [['http', '--read', '-', '--flow-bytes', 'lots'], 'TCPLENS_ERR_BAD_FLAG'],
      [['http', '--read', '-', '--write', '-'], 'TCPLENS_ERR_BAD_FLAG'],
      [['http', '--read', '-', '--netns', 'blue'], 'TCPLENS_ERR_BAD_FLAG'],
      [['http', '--bogus'], 'TCPLENS_ERR_UNKNOWN_FLAG'],
    ] as [string[], string][]) {
      const r = await runTcplens(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, new RegExp(`${code}:`), args.join(' '));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('live capture without root is refused with a hint, before anything is loaded', { timeout: 30000 }, async () => {
  const anyone = cliForAnyone();
  try {
    const r = await runTcplens(['http', '--iface', 'lo'], process.getuid?.() === 0 ? { uid: 65534, cli: anyone.cli } : {});
    assert.match(r.stderr, /TCPLENS_ERR_NOT_ROOT/);
    assert.equal(r.code, 2);
  } finally {
    anyone.dispose();
  }
});
