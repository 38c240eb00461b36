// tcplens collector: flags -> the store (DuckDB file) and the HTTP API; runs until a signal, then
// closes the listener first (no new batch is accepted) and the store last (folds its log in).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { TcplensError } from '../errors.js';
import { requestStop, untilStopped } from '../lifecycle.js';
import { checkStreamName, DEFAULT_STREAM, parseBusUrls } from '../collector/bus/names.js';
import { DEFAULT_MAX_BODY } from '../collector/server.js';
import { startCollectorService } from '../collector/service.js';
import { describeStore, parseStoreUrl, type StoreSpec } from '../collector/store-url.js';
import { readToken } from './collector-agent-flags.js';
import { durationFlag, formatDuration, helpText, parseFlags, type FlagTable, noArguments } from './flags.js';

export const flags = {
  listen: { type: 'string', arg: 'HOST:PORT', default: '127.0.0.1:7070', help: 'address to serve on (default 127.0.0.1:7070; any non-loopback address needs --token-file)' },
  db: { type: 'string', arg: 'PATH', help: 'DuckDB file to store events in (created if missing; default ./tcplens-collector.duckdb)' },
  store: { type: 'string', arg: 'URL', help: 'store events elsewhere: clickhouse://USER@HOST:8123/DB (clickhouses:// for https), chdb:DIR (ClickHouse in this process), duckdb:PATH' },
  'store-url': { type: 'string', arg: 'URL', help: 'the same as --store' },
  'store-password-file': { type: 'string', arg: 'FILE', help: 'file holding the ClickHouse user\'s password (rather than in the URL, which shows in ps)' },
  retention: { type: 'string', arg: 'DUR', default: '7d', help: 'delete events older than DUR, checked every minute (default 7d; 0 keeps everything)' },
  'token-file': { type: 'string', arg: 'FILE', help: 'file holding the bearer token every request must carry (Authorization: Bearer ...)' },
  'max-body': { type: 'string', arg: 'BYTES', default: String(DEFAULT_MAX_BODY), help: `largest ingest body accepted, before and after gzip (default ${DEFAULT_MAX_BODY}; k/m suffixes allowed)` },
  bus: { type: 'string', arg: 'URL[,URL..]', help: 'also store the batches agents publish to this NATS JetStream bus (nats://HOST:4222,...), sharing its one consumer with every other collector of the stream' },
  stream: { type: 'string', arg: 'NAME', help: `with --bus: the JetStream stream, created if missing (default ${DEFAULT_STREAM})` },
  verbose: { type: 'boolean', short: 'v', help: 'more detail on errors' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies FlagTable;

const USAGE = `tcplens collector [flags]

Gathers the events of many tcplens agents into one DuckDB file (or ClickHouse, --store) and answers
queries about them.

  POST /v1/events?agent=NAME&capability=accept|http|hops|probe&batch=ID
       body: the NDJSON that \`tcplens <capability> --json\` prints (Content-Encoding: gzip allowed);
       the same agent and batch id again is acknowledged and not stored twice
  GET  /v1/events?capability=&agent=&local=&client=&since=&until=&limit=
       {"events": [...]}: the records as ingested plus agent and capability, oldest first
  GET  /v1/clients/top?service=&limit=        top real clients per service
  GET  /v1/connections/series?service=&step=  connections per service over time
  GET  /v1/balance?expect=CHOOSER=W1,..&gateway_port=  per-tier backend shares and the verdict
  GET  /v1/probes?run=ID&gateway_port=         the path of each probe of a run
  GET  /v1/hops/distribution                  hop distances of hops agents' targets
  GET  /v1/agents                             agents: capabilities, last seen, version, drops
       (all of them also take since=, until= and agent=)
  GET  /metrics   Prometheus metrics

With --bus, batches also come from NATS JetStream: agents run with --bus instead of --collector,
every collector with the same --bus and --stream shares one durable consumer (each batch is stored
by one of them, and acknowledged to the bus only once stored).

Errors are JSON: {"error": {"code": "TCPLENS_ERR_...", "message": ..., "hint": ...}}.`;

const MAX_RETENTION = 3650n * 86400n * 1_000_000_000n;

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || port > 65535 || (m[1] && isIP(m[1]) !== 6)) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--listen ${value}: expected HOST:PORT`, 'e.g. --listen 127.0.0.1:7070 or --listen [::1]:7070 (port 0: any free port)');
  }
  return { host, port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

export function sizeFlag(name: string, value: string): number {
  const m = /^(\d+)([kKmM]?)$/.exec(value);
  const n = m ? Number(m[1]) * (m[2] ? (m[2].toLowerCase() === 'k' ? 1024 : 1024 * 1024) : 1) : NaN;
  if (!m || n < 1024 || n > 1024 ** 3) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--${name} ${value}: expected a size from 1k to 1024m`, `e.g. --${name} 16m`);
  }
  return n;
}

const DEFAULT_DB = 'tcplens-collector.duckdb';

function readPassword(file: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--store-password-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'give a readable file holding the password on one line');
  }
}

/** --db PATH, or --store / --store-url URL (at most one of them); DuckDB at ./tcplens-collector.duckdb without either. */
export function storeOf(v: { db?: unknown; store?: unknown; 'store-url'?: unknown; 'store-password-file'?: unknown }): StoreSpec {
  const given = (['db', 'store', 'store-url'] as const).filter((k) => v[k] !== undefined);
  if (given.length > 1) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--${given.join(' and --')} both say where to store: give one`, 'either --db FILE (DuckDB) or --store URL');
  }
  const url = (v.store ?? v['store-url']) as string | undefined;
  const pwFile = v['store-password-file'] as string | undefined;
  if (url === undefined) {
    if (pwFile !== undefined) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--store-password-file only means something with --store clickhouse://...', 'add --store URL');
    return { kind: 'duckdb', path: (v.db as string | undefined) ?? DEFAULT_DB };
  }
  const spec = parseStoreUrl(url, pwFile === undefined ? null : readPassword(pwFile));
  if (pwFile !== undefined && spec.kind !== 'clickhouse') throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--store-password-file only means something with --store clickhouse://...', 'chdb: and duckdb: stores have no password');
  return spec;
}

export function collectorOptions(v: ReturnType<typeof parseFlags<typeof flags>>) {
  noArguments(v, 'collector');
  const listen = parseListen(v.listen as string);
  const token = v['token-file'] ? readToken(v['token-file']) : null;
  if (!token && !isLoopback(listen.host)) {
    throw new TcplensError('TCPLENS_ERR_NEEDS_TOKEN', `--listen ${v.listen}: serving beyond this host needs a token`,
      'add --token-file FILE (agents send it with --token-file too), or listen on 127.0.0.1');
  }
  if (v.stream !== undefined && !v.bus) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--stream only means something with --bus', 'add --bus nats://HOST:4222');
  return {
    bus: v.bus ? { servers: parseBusUrls(v.bus), stream: checkStreamName(v.stream ?? DEFAULT_STREAM) } : null,
    listen,
    token,
    db: storeOf(v),
    retentionMs: Number(durationFlag('retention', v.retention as string, MAX_RETENTION) / 1_000_000n),
    maxBodyBytes: sizeFlag('max-body', v['max-body'] as string),
  };
}

export async function run(argv: string[]): Promise<number> {
  const v = parseFlags(argv, flags, 'collector');
  if (v.help) {
    process.stdout.write(helpText(USAGE, flags));
    return 0;
  }
  const { bus, ...o } = collectorOptions(v);
  let fatal: TcplensError | null = null;
  const service = await startCollectorService({
    ...o,
    ...(bus && { bus: { ...bus, notice: (m: string) => process.stderr.write(`tcplens collector: ${m}\n`), fail: (e: TcplensError) => { fatal = e; requestStop('error'); } } }),
  });
  process.stderr.write(`tcplens collector: listening on ${service.url} (${describeStore(o.db)}, retention ${o.retentionMs ? formatDuration(BigInt(o.retentionMs) * 1_000_000n) : 'none'}${o.token ? ', token required' : ''}${bus ? `, bus ${bus.servers.join(',')} stream ${bus.stream}` : ''})\n`);
  await untilStopped();
  if (fatal) throw fatal;
  return 0;
}
