// tcplens lab demo --collector: a collector beside the demo (loopback, a DuckDB file in a
// temporary directory), the demo's accept and http records shipped to it through the same agent
// path as `--collector` on those commands (what the gateway section's gateways saw as agent
// lab-demo-gw, so its balance is not mixed with the FULLNAT lab's), then its page's URL, served
// until Ctrl-C.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TcplensError } from '../errors.js';
import { onCleanup, untilStopped } from '../lifecycle.js';
import { DEFAULT_MAX_BODY } from '../collector/server.js';
import { startCollectorService } from '../collector/service.js';
import type { DemoShip } from '../lab/demo.js';
import type { AcceptRecord } from '../capabilities/accept/accept.js';
import type { HttpExchange } from '../net/http1.js';
import type { SeenExchange } from '../capabilities/http/balance-summary.js';
import { isLoopback, parseListen } from './collector.js';
import { finishShipper, shipperFromFlags } from './collector-agent-flags.js';
import type { FlagTable } from './flags.js';

export const demoCollectorFlags = {
  collector: { type: 'boolean', help: 'also run a tcplens collector, ship the demo\'s records to it, print its web page\'s URL and serve it until Ctrl-C' },
  'collector-listen': { type: 'string', arg: 'HOST:PORT', default: '127.0.0.1:7070', help: 'where --collector serves (a loopback address; port 0: any free port)' },
} satisfies FlagTable;

export const DEMO_AGENT = 'lab-demo';
export const DEMO_GATEWAY_AGENT = 'lab-demo-gw';

export async function demoWithCollector(listenFlag: string, demo: (ship: DemoShip) => Promise<number>): Promise<number> {
  const listen = parseListen(listenFlag);
  if (!isLoopback(listen.host)) {
    throw new TcplensError('TCPLENS_ERR_NEEDS_TOKEN', `--collector-listen ${listenFlag}: the demo's collector has no token, so it serves loopback only`,
      'e.g. --collector-listen 127.0.0.1:7070; for other hosts run tcplens collector --token-file F');
  }
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-demo-collector-'));
  // Registered first, so it runs last: after the store has closed its file.
  onCleanup('the demo collector\'s directory', () => rmSync(dir, { recursive: true, force: true }));
  const service = await startCollectorService({ db: join(dir, 'demo.duckdb'), listen, retentionMs: 0, token: null, maxBodyBytes: DEFAULT_MAX_BODY });
  const accept = shipperFromFlags<AcceptRecord>({ collector: service.url, 'agent-name': DEMO_AGENT }, 'accept')!;
  const http = shipperFromFlags<HttpExchange>({ collector: service.url, 'agent-name': DEMO_AGENT }, 'http')!;
  const gateways = shipperFromFlags<SeenExchange>({ collector: service.url, 'agent-name': DEMO_GATEWAY_AGENT }, 'http')!;
  const code = await demo({ accept: (r) => accept.write(r), http: (e) => http.write(e), gatewayHttp: (e) => gateways.write(e) });
  for (const s of [accept, http, gateways]) await finishShipper(s);
  const n = accept.stats.acked + http.stats.acked + gateways.stats.acked;
  process.stdout.write([
    `  tcplens collector at ${service.url} holds the demo's ${n} records (${accept.stats.acked} accept, ${http.stats.acked} http, ` +
      `${gateways.stats.acked} http from the gateways as agent ${DEMO_GATEWAY_AGENT}).`,
    `    the page:   ${service.url}/`,
    `    the events: curl -s '${service.url}/v1/events?capability=accept&limit=5'`,
    // Filtered: unfiltered, the FULLNAT lab's exchanges on port 80 count as a third backend of "lb".
    `    the gateway tier: ${service.url}/?agent=${DEMO_GATEWAY_AGENT}  (or curl -s '${service.url}/v1/balance?agent=${DEMO_GATEWAY_AGENT}')`,
    `  Ctrl-C stops it and removes its DuckDB file (${dir}).`, '', ''].join('\n'));
  await untilStopped();
  await service.close();
  return code;
}
