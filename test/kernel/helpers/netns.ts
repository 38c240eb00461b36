// Throwaway test topology: two network namespaces joined by a veth, each with its own cgroup,
// and processes started inside both (cgroup joined BEFORE `ip netns exec`, which remounts /sys).
// Every name carries the test's pid and a counter so tests can run side by side; dispose()
// removes all of it, and is safe to call twice.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { createCgroup } from '../../../src/kernel/cgroup.js';

let serial = 0;

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface Side {
  ns: string;
  ip4: string;
  ip6: string;
  cgroup: string;
}

export class NetPair {
  readonly client: Side;
  readonly server: Side;
  private readonly procs: ChildProcess[] = [];
  private readonly cgroups: ReturnType<typeof createCgroup>[] = [];
  private readonly parent: ReturnType<typeof createCgroup>;

  constructor(tag = 't') {
    const id = `${process.pid % 10000}${serial++}`;
    const net = 1 + ((process.pid * 7 + serial) % 250);
    const base = `tl${tag}${id}`.slice(0, 10);
    this.parent = createCgroup(`tcplens-test-${base}`);
    const mk = (role: 'c' | 's', host: number): Side => {
      const cg = createCgroup(`tcplens-test-${base}/${role}`);
      this.cgroups.push(cg);
      return { ns: `${base}${role}`, ip4: `10.231.${net}.${host}`, ip6: `fd00:231:${net.toString(16)}::${host}`, cgroup: cg.path };
    };
    this.client = mk('c', 1);
    this.server = mk('s', 2);
    try {
      for (const s of [this.client, this.server]) sh('ip', ['netns', 'add', s.ns]);
      const [vc, vs] = [`${base}c0`, `${base}s0`];
      sh('ip', ['link', 'add', vc, 'netns', this.client.ns, 'type', 'veth', 'peer', 'name', vs, 'netns', this.server.ns]);
      for (const [s, dev] of [[this.client, vc], [this.server, vs]] as const) {
        sh('ip', ['-n', s.ns, 'addr', 'add', `${s.ip4}/24`, 'dev', dev]);
        sh('ip', ['-n', s.ns, 'addr', 'add', `${s.ip6}/64`, 'dev', dev, 'nodad']);
        sh('ip', ['-n', s.ns, 'link', 'set', dev, 'up']);
        sh('ip', ['-n', s.ns, 'link', 'set', 'lo', 'up']);
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** Start argv inside side's namespace and cgroup. */
  spawnIn(side: Side, argv: string[]): ChildProcess {
    const script = 'echo $$ > "$0/cgroup.procs" && ns="$1" && shift && exec ip netns exec "$ns" "$@"';
    const p = spawn('sh', ['-c', script, side.cgroup, side.ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(p);
    return p;
  }

  /** Run argv to completion in side's namespace and cgroup; its stdout. */
  async run(side: Side, argv: string[], timeoutMs = 30000): Promise<string> {
    const p = this.spawnIn(side, argv);
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => { out += d; });
    p.stderr!.on('data', (d) => { err += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    const [code] = await once(p, 'exit');
    clearTimeout(timer);
    if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}: ${err}`);
    return out;
  }

  dispose(): void {
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGKILL');
    for (const s of [this.client, this.server]) {
      try { sh('ip', ['netns', 'del', s.ns]); } catch { /* not there */ }
    }
    for (const cg of this.cgroups) cg.remove();
    this.parent.remove();
  }
}

/** Every line a child prints on one stream, kept, with a way to wait for one that matches. */
export class Lines {
  readonly all: string[] = [];
  private waiters: { match: RegExp; resolve: (l: string) => void }[] = [];
  private ended = false;

  constructor(private readonly p: ChildProcess, stream: 'stdout' | 'stderr' | null) {
    if (!stream) {
      this.ended = true;
      return;
    }
    const rl = createInterface({ input: p[stream]! });
    rl.on('line', (line) => {
      this.all.push(line);
      this.waiters = this.waiters.filter((w) => (w.match.test(line) ? (w.resolve(line), false) : true));
    });
    rl.on('close', () => { this.ended = true; });
  }

  wait(match: RegExp, timeoutMs = 15000): Promise<string> {
    const seen = this.all.find((l) => match.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${match}; got:\n${this.all.join('\n')}`)), timeoutMs);
      this.waiters.push({ match, resolve: (l) => { clearTimeout(timer); resolve(l); } });
      this.p.once('exit', (code) => {
        setTimeout(() => { if (!this.all.some((l) => match.test(l))) { clearTimeout(timer); reject(new Error(`exited (${code}) before ${match}; got:\n${this.all.join('\n')}`)); } }, 50);
      });
    });
  }

  get done(): boolean {
    return this.ended;
  }
}
