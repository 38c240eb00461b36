// `tcplens lab demo --collector`: the demo's records reach a real collector through the agent
// path (the gateway section's as an agent of their own, whose balance the collector judges as the
// demo's table did), its page and query API answer while it serves, and Ctrl-C ends it leaving
// nothing behind (no lab, no temporary DuckDB directory).
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { labDown, leftovers } from '../../src/lab/lab.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const name = `dc${process.pid}`;

after(async () => { await labDown(name).catch(() => {}); });

async function getJson(url: string): Promise<any> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10000) });
  assert.equal(r.status, 200, url);
  return r.json();
}

test('demo --collector ships the demo\'s accept and http records, serves the page, and stops on Ctrl-C', { timeout: 180_000 }, async () => {
  const child = spawn(process.execPath, [CLI, 'lab', 'demo', '--name', name, '--clients', '2', '--collector', '--collector-listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = once(child, 'exit');
  try {
    const deadline = Date.now() + 120_000;
    while (!/Ctrl-C stops it/.test(out)) {
      if (child.exitCode !== null || Date.now() > deadline) assert.fail(`no collector line:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const m = /tcplens collector at (http:\/\/127\.0\.0\.1:\d+) holds the demo's (\d+) records \((\d+) accept, (\d+) http, (\d+) http from the gateways as agent lab-demo-gw\)/.exec(out);
    assert.ok(m, out);
    const [, url, total, nAccept, nHttp, nGateway] = m;
    // 2 clients x 2 servers, IPv4 only: 4 connections and 4 exchanges, each acknowledged.
    assert.equal(Number(nAccept), 4, out);
    assert.equal(Number(nHttp), 4, out);
    // The gateway section: 240 requests through 2 gateways, each seen on both of its legs.
    assert.ok(Number(nGateway) >= 0.95 * 480 && Number(nGateway) <= 480, out);
    assert.equal(Number(total), 8 + Number(nGateway));
    const accept = await getJson(`${url}/v1/events?capability=accept&limit=100`);
    assert.equal(accept.events.length, 4);
    // Every stored accept record names the real client the demo's table showed for it.
    const tableClients = out.split('\n').filter((l) => /^\s+client\d+\s/.test(l) && /real client$/.test(l))
      .map((l) => l.trim().split(/\s{2,}/)[2]);
    assert.deepEqual(accept.events.map((e: { client: string }) => e.client).sort(), tableClients.slice(0, 4).sort());
    assert.ok(accept.events.every((e: { agent: string }) => e.agent === 'lab-demo'));
    const http = await getJson(`${url}/v1/events?capability=http&agent=lab-demo&limit=100`);
    assert.equal(http.events.length, 4);
    // The collector names the layer the demo planted (gw1 skewed 70/10/10/10), as its table did.
    const balance = await getJson(`${url}/v1/balance?agent=lab-demo-gw`);
    assert.deepEqual({ ...balance.verdict, samples: undefined }, { balanced: false, tier: 2, node: 'lab-demo-gw/gw1', samples: undefined, confident: true }, JSON.stringify(balance));
    assert.match(out, /verdict: SKEWED at tier 2 .*gw1 sends/, out);
    const agents = await getJson(`${url}/v1/agents`);
    assert.deepEqual(agents.agents.map((a: { name: string }) => a.name).sort(), ['lab-demo', 'lab-demo-gw']);
    const page = await fetch(`${url}/`, { signal: AbortSignal.timeout(10000) });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    assert.deepEqual(leftovers(name), [], 'the lab went down before the collector kept serving');
    const dir = /removes its DuckDB file \((\/\S+)\)/.exec(out)?.[1];
    assert.ok(dir && existsSync(dir), out);
    child.kill('SIGINT');
    const [code] = await exited;
    assert.equal(code, 0, `${out}\n${err}`);
    await assert.rejects(fetch(`${url}/v1/agents`, { signal: AbortSignal.timeout(3000) }), 'the collector stopped listening');
    assert.equal(existsSync(dir), false, 'the temporary DuckDB directory was removed');
  } finally {
    if (child.exitCode === null) { child.kill('SIGKILL'); await exited; }
  }
});
