// A real `tcplens collector` child process on a loopback port with its DuckDB file in a temp
// dir, and the HTTP calls tests make to it (node:http, so bodies and headers are exactly ours).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';

export const cliPath = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

export interface Collector { proc: ChildProcess; port: number; url: string; stderr: () => string; stop(): Promise<number | null>; kill9(): Promise<void> }

/** A port free right now on 127.0.0.1 (for a collector that must come back on the same one). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, 'close');
  return port;
}

/** A temp dir removed after the test, whatever happens. */
export function tempDir(t: { after: (fn: () => void) => void }, prefix = 'tcplens-collector-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startCollector(db: string, opts: { port?: number; args?: string[]; env?: Record<string, string>; track?: { after: (fn: () => Promise<unknown>) => void } } = {}): Promise<Collector> {
  const proc = spawn(process.execPath, [cliPath, 'collector', '--listen', `127.0.0.1:${opts.port ?? 0}`, ...(/^(chdb|clickhouses?|duckdb):/.test(db) ? ['--store', db] : ['--db', db]), ...(opts.args ?? [])],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  let err = '';
  proc.stderr!.setEncoding('utf8');
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`collector did not start: ${err}`)), 20_000);
    proc.stderr!.on('data', (d: string) => {
      err += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`collector exited (${code}): ${err}`)); });
  });
  const exited = once(proc, 'exit');
  const c: Collector = {
    proc, port: 0, url: '', stderr: () => err,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const [code] = await exited;
      clearTimeout(timer);
      return code as number | null;
    },
    kill9: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  opts.track?.after(() => c.kill9());
  c.port = await ready;
  c.url = `http://127.0.0.1:${c.port}`;
  return c;
}

export interface Reply { status: number; json: any; text: string }

export function call(url: string, method: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...(body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => {
        let json: unknown = null;
        try { json = JSON.parse(text); } catch { /* metrics are text */ }
        resolve({ status: res.statusCode ?? 0, json, text });
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

export const ndjson = (recs: object[]) => recs.map((r) => `${JSON.stringify(r)}\n`).join('');

export function postBatch(base: string, agent: string, capability: string, batch: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  const q = new URLSearchParams({ agent, capability, batch });
  return call(`${base}/v1/events?${q}`, 'POST', body, headers);
}

export async function events(base: string, params: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<Record<string, unknown>[]> {
  const r = await call(`${base}/v1/events?${new URLSearchParams({ limit: '100000', ...params })}`, 'GET', undefined, headers);
  if (r.status !== 200) throw new Error(`query failed: ${r.status} ${r.text}`);
  return r.json.events;
}
