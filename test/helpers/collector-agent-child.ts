// An agent process for fault tests: produces COUNT hops records named NAME/i at a steady pace,
// ships them through CollectorShipper, waits until all are acknowledged, prints its stats as
// JSON and exits. Usage: node collector-agent-child.js URL NAME COUNT PER_TICK
// URL nats://... (comma-separated servers) ships to the bus's stream tcplens instead of a collector.
import { CollectorShipper, SHIPPER_DEFAULTS } from '../../src/collector/agent.js';
import { BUS_MAX_BATCH_BYTES, BusPublisher } from '../../src/collector/bus/publisher.js';
import { DEFAULT_STREAM, parseBusUrls } from '../../src/collector/bus/names.js';
import { hopsRecord } from './collector-records.js';

const [url, name, countText, perTickText] = process.argv.slice(2);
const count = Number(countText), perTick = Number(perTickText);
const shipper = new CollectorShipper<object>({
  ...SHIPPER_DEFAULTS,
  ...(url.startsWith('nats://')
    ? { transport: new BusPublisher({ servers: parseBusUrls(url), stream: DEFAULT_STREAM, agentName: name, timeoutMs: 2000 }), maxBatchBytes: BUS_MAX_BATCH_BYTES }
    : { url }),
  capability: 'hops', agentName: name, token: null,
  maxBatchEvents: 100, flushMs: 20, retryMinMs: 50, retryMaxMs: 400, requestTimeoutMs: 5000,
  notice: (m) => process.stderr.write(`${name}: ${m}\n`),
});
let i = 0;
const tick = setInterval(() => {
  for (let k = 0; k < perTick && i < count; k++) shipper.write(hopsRecord(`${name}/${i++}`));
  if (i >= count) {
    clearInterval(tick);
    void shipper.drain(60_000).then((stats) => {
      process.stdout.write(`${JSON.stringify(stats)}\n`);
      process.exit(stats.unsent || stats.dropped || stats.rejected ? 1 : 0);
    });
  }
}, 10);
