// accept names the process that accept()ed each connection where the kernel lets an fexit or a
// kretprobe on inet_csk_accept run (the matrix's 6.1 and 6.12 guests), and falls back to the
// listener where it does not (this project's host: no fentry, no kprobes), saying which.
// A listener that forks a differently named acceptor tells the two apart.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { once } from 'node:events';
import { AcceptTracer, DEFAULT_MERGE_CAPACITY, type AcceptOptions, type AcceptRecord } from '../../src/capabilities/accept/accept.js';
import { acceptObject, describePlan, type AcceptPlan } from '../../src/capabilities/accept/attach-plan.js';
import { createCgroup } from '../../src/kernel/cgroup.js';
import { helperAvailable, kprobesAvailable } from '../../src/kernel/features.js';
import { TcplensError } from '../../src/errors.js';
import { recordFeature } from '../matrix/record-feature.js';

// listen() as "tcpl-listen", then a forked child renamed "tcpl-accept" accepts one connection
const SERVER = `
import os, socket, sys
sys.stdin.readline()
open('/proc/self/comm', 'w').write('tcpl-listen')
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen(8)
pid = os.fork()
if pid == 0:
    open('/proc/self/comm', 'w').write('tcpl-accept')
    c, _ = s.accept()
    c.sendall(b'ok')
    c.close()
    os._exit(0)
print(os.getpid(), pid, s.getsockname()[1], flush=True)
os.waitpid(pid, 0)
`;

const NEEDS = 'accept needs bpf_get_netns_cookie in sock_ops (Linux >= 5.15)';

function options(cgroup: string): AcceptOptions {
  return {
    cgroup, ports: [], family: 0, mergeWindowNs: 0n, mergeCapacity: DEFAULT_MERGE_CAPACITY,
    trusted: [], dialects: [], toaConflict: 'reject', saveSyn: false, readToaKo: false,
  };
}

/** Start a tracer the given way, make one connection to the listener/acceptor pair, and return
 * the tracer's plan, its record of the connection and the two processes. */
async function oneConnection(start: (o: AcceptOptions, on: (r: AcceptRecord) => void) => AcceptTracer):
  Promise<{ plan: AcceptPlan; r: AcceptRecord; listener: number; acceptor: number }> {
  const cg = createCgroup(`tcplens-acceptor-${process.pid}-${Date.now() % 100000}`);
  const records: AcceptRecord[] = [];
  let tracer: AcceptTracer | null = null;
  const server = spawn('python3', ['-c', SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    tracer = start(options(cg.path), (r) => records.push(r));
    const plan = tracer.plan;
    cg.join(server.pid!);
    server.stdin!.write('go\n');
    // The whole line: a pipe may hand it over in pieces.
    let line = '';
    while (!line.includes('\n')) line += ((await once(server.stdout!, 'data')) as [Buffer])[0].toString();
    const [listener, acceptor, port] = line.trim().split(' ').map(Number);
    const sock = connect(port, '127.0.0.1');
    const [reply] = await once(sock, 'data') as [Buffer];
    assert.equal(reply.toString(), 'ok');
    sock.destroy();
    await once(server, 'exit');
    const deadline = Date.now() + 30_000;
    while (!records.some((x) => x.local.endsWith(`:${port}`)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    await tracer.stop();
    tracer = null;
    const r = records.find((x) => x.local.endsWith(`:${port}`));
    assert.ok(r, `a record for port ${port}: ${JSON.stringify(records)}`);
    return { plan, r, listener, acceptor };
  } finally {
    await tracer?.stop();
    server.kill('SIGKILL');
    cg.remove();
  }
}

test('pid and comm: the accepting process where fexit/kretprobe work, else the listener, and the plan says which', { timeout: 240_000 }, async (t) => {
  if (!helperAvailable('sock_ops', 'get_netns_cookie')) {
    // kernel-features.test.ts checks the coded error accept gives here
    t.skip(NEEDS);
    return;
  }
  const { plan, r, listener, acceptor } = await oneConnection((o, on) => AcceptTracer.start(o, on));
  recordFeature('accept: pid/comm from', plan.acceptor ? plan.acceptor.hook : plan.listenerNames ? 'listen() (sock_ops)' : 'listener (/proc)');
  if (kprobesAvailable()) assert.ok(plan.acceptor, `kprobes exist here, so a way to the acceptor must be chosen: ${describePlan(plan)}`);
  if (plan.acceptor) {
    assert.equal(r.pid, acceptor, `the accepting process's pid (listener ${listener}): ${describePlan(plan)}`);
    assert.equal(r.comm, 'tcpl-accept');
    assert.match(describePlan(plan), /the accepting process \((fexit|kretprobe) on inet_csk_accept\)/);
  } else {
    assert.match(describePlan(plan), /fallback/);
    assert.ok(plan.refused.length >= 2, `each way tried says why not: ${plan.refused.join('; ')}`);
    if (plan.listenerNames) {
      assert.equal(r.pid, listener);
      assert.equal(r.comm, 'tcpl-listen');
    } else {
      assert.ok(r.pid === listener || r.pid === acceptor, `a process holding the listener: ${r.pid}`);
    }
  }
});

test('the kretprobe way on its own names the accepting process too; without kprobes it is a coded attach error', { timeout: 240_000 }, async (t) => {
  if (!helperAvailable('sock_ops', 'get_netns_cookie')) {
    t.skip(NEEDS);
    return;
  }
  const plan: AcceptPlan = { object: acceptObject(), acceptor: { program: 'accept_kretprobe', hook: 'kretprobe on inet_csk_accept' }, listenerNames: false, refused: [] };
  if (!kprobesAvailable()) {
    const cg = createCgroup(`tcplens-acceptor-kp-${process.pid}`);
    try {
      assert.throws(() => AcceptTracer.startWith(options(cg.path), plan, () => {}), (e: unknown) => e instanceof TcplensError && e.code === 'TCPLENS_ERR_ATTACH');
    } finally {
      cg.remove();
    }
    return;
  }
  const { r, acceptor } = await oneConnection((o, on) => AcceptTracer.startWith(o, plan, on));
  recordFeature('accept: kretprobe way', r.pid === acceptor ? 'names the acceptor' : `pid ${r.pid}`);
  assert.equal(r.pid, acceptor);
  assert.equal(r.comm, 'tcpl-accept');
});
