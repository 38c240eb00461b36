// One connection to the NATS servers of --bus, made in the background and kept: the first
// connect is retried with backoff for as long as it takes (a bus that is down when an agent or a
// collector starts is not an error, only a notice), and once connected the client reconnects by
// itself (to any server of the cluster it learns of) after an outage.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { backoffMs } from '../agent.js';

export interface BusConnectionOptions {
  servers: string[];
  /** the client name the servers show (monitoring: connz) */
  name: string;
  /** outages and recoveries, for the person running the process; null: keep quiet (the caller reports) */
  notice: ((message: string) => void) | null;
  retryMinMs?: number;
  retryMaxMs?: number;
}

export class BusConnection {
  private nc: NatsConnection | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private readonly first: Promise<NatsConnection | null>;
  readonly where: string;

  constructor(private readonly o: BusConnectionOptions) {
    this.where = `bus ${o.servers.join(',')}`;
    this.first = this.connectLoop();
  }

  /** The connection once made; null if it is not made within ms (or the connection is closed). */
  async ready(ms: number): Promise<NatsConnection | null> {
    if (this.nc) return this.nc;
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((r) => { t = setTimeout(() => r(null), ms); });
    try {
      return await Promise.race([this.first, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  /** The connection, waiting as long as it takes (null: closed meanwhile). */
  connected(): Promise<NatsConnection | null> {
    return this.first;
  }

  private async connectLoop(): Promise<NatsConnection | null> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        const nc = await connect({
          servers: this.o.servers, name: this.o.name, timeout: 5000,
          // After the first connect: reconnect forever, to any known server, every half second.
          maxReconnectAttempts: -1, reconnectTimeWait: 500, reconnectJitter: 200, pingInterval: 10_000,
        });
        if (this.closed) {
          await nc.close();
          return null;
        }
        this.nc = nc;
        if (attempt > 0) this.o.notice?.(`${this.where}: connected to ${nc.getServer()}`);
        void this.watch(nc);
        return nc;
      } catch (e) {
        if (attempt === 0) this.o.notice?.(`${this.where}: unreachable (${why(e)}); retrying`);
        await this.sleep(backoffMs(attempt, this.o.retryMinMs ?? 200, this.o.retryMaxMs ?? 5000));
      }
    }
    return null;
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') this.o.notice?.(`${this.where}: disconnected from ${s.server}; reconnecting`);
      else if (s.type === 'reconnect') this.o.notice?.(`${this.where}: reconnected to ${s.server}`);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(t); this.wake = null; resolve(); };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    const nc = this.nc;
    this.nc = null;
    if (nc && !nc.isClosed()) await nc.close().catch(() => { /* closing anyway */ });
  }
}

/** An error's short reason: its code (ECONNREFUSED...) if it has one, else its message. */
export function why(e: unknown): string {
  const err = e as { code?: unknown; message?: string; cause?: { code?: unknown } };
  const code = typeof err?.code === 'string' ? err.code : typeof err?.cause?.code === 'string' ? err.cause.code : null;
  return code && !/^\d+$/.test(code) ? code : err?.message ?? String(e);
}
