// The toa tests' stage: a NetPair whose client namespace plays the trusted FULLNAT balancer (its
// toa-writer names a "real client" per local port), servers in the server namespace, and the real
// `tcplens toa` CLI pinning into a directory of this test's own. dispose() removes all of it,
// also when the CLI itself misbehaved.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../../src/kernel/paths.js';
import { disableToa } from '../../../src/capabilities/toa/toa.js';
import type { ToaStatus } from '../../../src/capabilities/toa/status.js';
import { Lines, NetPair, sh, type Side } from './netns.js';
import { ToaWriter, WRITE_ACK, WRITE_SYN } from './toa-writer.js';

export { ToaWriter, WRITE_ACK, WRITE_SYN } from './toa-writer.js';

let serial = 0;
const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const HELPERS = join(repoRoot, 'dist', 'test', 'kernel', 'helpers');

export interface CliResult { code: number; stdout: string; stderr: string }
export interface Seen { localPort: number; seen: string }

/** A made-up real client for connection i (i < 60000): its own port, addresses from the
 * documentation ranges (never contacted: they only travel inside TOAs). */
export function claimed(i: number, family: 4 | 6): { addr: string; port: number } {
  const port = 1024 + (i % 60000);
  return family === 4 ? { addr: `198.51.100.${1 + (i % 250)}`, port } : { addr: `2001:db8::${(i + 1).toString(16)}`, port };
}

/** What a server reports for a client: dual-stack sockets show IPv4 peers v4-mapped. */
export function shown(c: { addr: string; port: number }, dualStack: boolean): string {
  return `${dualStack && !c.addr.includes(':') ? `::ffff:${c.addr}` : c.addr} ${c.port}`;
}

export const SERVERS = {
  /** python3: answers each connection with its listening socket's TCP_SAVE_SYN setting ("0"/"1") */
  saveSynFlag: (port: number) => ['python3', '-u', '-c', `
import socket
s = socket.socket(socket.AF_INET); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", ${port})); s.listen(8)
print("listening", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"%d\\n" % s.getsockopt(socket.SOL_TCP, 27)); c.close()
`],
  /** test/kernel/helpers/tcp-server: says what socket.remoteAddress/remotePort are, then closes */
  nodeTcp: (port: number, host = '::') => [process.execPath, join(HELPERS, 'tcp-server.js'), host, String(port)],
  /** node:http, unmodified: the body is req.socket.remoteAddress and remotePort */
  nodeHttp: (port: number, host = '::') => [process.execPath, '-e',
    `require('http').createServer((q, s) => { s.setHeader('Connection', 'close'); s.end(q.socket.remoteAddress + ' ' + q.socket.remotePort + '\\n'); })` +
    `.listen({ host: ${JSON.stringify(host)}, port: ${port}, ipv6Only: false }, () => console.log('listening'));`],
  /** python3's http.server, unmodified: the body is self.client_address (what accept() returned) */
  pythonHttp: (port: number, family: 4 | 6) => ['python3', '-u', '-c', `
import http.server, socket
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s %s\\n" % self.client_address[:2]).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.send_header("Connection", "close")
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ${family} == 6 else socket.AF_INET
    def server_bind(self):
        if self.address_family == socket.AF_INET6: self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
srv = S(("::" if ${family} == 6 else "0.0.0.0", ${port}), H)
print("listening", flush=True)
srv.serve_forever()
`],
};

export class ToaHarness {
  readonly pair: NetPair;
  readonly pinDir: string;
  private writers: ToaWriter[] = [];
  private disposed = false;

  constructor(tag: string) {
    this.pair = new NetPair(tag);
    this.pinDir = `/sys/fs/bpf/tcplens/toa-test-${process.pid}-${serial++}`;
  }

  get client(): Side { return this.pair.client; }
  get server(): Side { return this.pair.server; }

  /** The balancer's own addresses, as --trusted-lb flags. */
  trustedFlags(): string[] {
    return ['--trusted-lb', `${this.client.ip4}/32`, '--trusted-lb', `${this.client.ip6}/128`];
  }

  cli(args: string[], env: Record<string, string> = {}): CliResult {
    const r = spawnSync(process.execPath, [CLI, 'toa', ...args], {
      encoding: 'utf8', timeout: 30000, env: { ...process.env, TCPLENS_TOA_PIN_DIR: this.pinDir, ...env },
    });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** `tcplens toa enable` on the server's cgroup, trusting the client side; must succeed. */
  enable(extra: string[] = []): CliResult {
    const r = this.cli(['enable', '--cgroup', this.server.cgroup, ...this.trustedFlags(), ...extra]);
    if (r.code !== 0) throw new Error(`toa enable failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r;
  }

  disable(): CliResult {
    const r = this.cli(['disable']);
    if (r.code !== 0) throw new Error(`toa disable failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r;
  }

  status(): ToaStatus {
    const r = this.cli(['status', '--json']);
    if (r.code !== 0) throw new Error(`toa status failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as ToaStatus;
  }

  writer(writeOn = WRITE_SYN | WRITE_ACK): ToaWriter {
    const w = new ToaWriter(this.client.cgroup, writeOn);
    this.writers.push(w);
    return w;
  }

  /** Start a server in the server namespace and wait until it listens. */
  async serve(argv: string[]): Promise<ChildProcess> {
    const p = this.pair.spawnIn(this.server, argv);
    const out = new Lines(p, 'stdout');
    const err = new Lines(p, 'stderr');
    try {
      await out.wait(/listening/);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nstderr:\n${err.all.join('\n')}`);
    }
    return p;
  }

  /** Connect from the client namespace (toa-client.ts flags); one result per connection. */
  async connect(args: string[]): Promise<Seen[]> {
    const out = await this.pair.run(this.client, [process.execPath, join(HELPERS, 'tcp-client.js'), ...args], 60000);
    return out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Seen);
  }

  /** An extra address on the client side's veth: a host outside the trusted ranges. */
  addClientAddress(ip4: string, ip6: string): void {
    const dev = sh('ip', ['-n', this.client.ns, '-o', 'link', 'show', 'type', 'veth']).split(':')[1].trim().split('@')[0];
    sh('ip', ['-n', this.client.ns, 'addr', 'add', `${ip4}/24`, 'dev', dev]);
    sh('ip', ['-n', this.client.ns, 'addr', 'add', `${ip6}/64`, 'dev', dev, 'nodad']);
  }

  /** Programs attached to a cgroup, by name (bpftool's view, not ours). */
  attachedTo(cgroup: string): string[] {
    const out = JSON.parse(sh('bpftool', ['-j', 'cgroup', 'show', cgroup]).trim() || '[]') as { name: string }[];
    return out.map((p) => p.name);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const w of this.writers) w.close();
    // The CLI should have cleaned up; if a test failed half-way it did not.
    try { if (existsSync(this.pinDir)) disableToa(this.pinDir); } catch { /* the cgroups' removal detaches anyway */ }
    try { rmdirSync(this.pinDir); } catch { /* gone already (disable removes it), or not ours to remove */ }
    this.pair.dispose();
  }
}

/** v4 and v6 peer addresses of the client side outside the trusted /32 and /128. */
export function untrustedAddrs(h: ToaHarness): { ip4: string; ip6: string } {
  return { ip4: h.client.ip4.replace(/\.\d+$/, '.77'), ip6: h.client.ip6.replace(/::\d+$/, '::77') };
}
