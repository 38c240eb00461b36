// `tcplens lab demo --gateways 2 --pods 4 --skew gw1=...`: the demo plants the skew, sends requests
// through the VIP, captures in the gateways, and its summary names tier 2 and gw1; then the lab is gone.
import test from 'node:test';
import assert from 'node:assert/strict';
import { leftovers } from '../../src/lab/lab.js';
import { runTcplens } from './helpers/tcplens-cli.js';

test('lab demo --gateways 2 --pods 4 --skew gw1=70,10,10,10 names tier 2 and gw1, and cleans up', { timeout: 60000 }, async () => {
  const name = `hd${process.pid % 100000}`;
  const r = await runTcplens(['lab', 'demo', '--name', name, '--gateways', '2', '--pods', '4', '--skew', 'gw1=70,10,10,10']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /skew planted: gw1=70,10,10,10; kernel drops 0/);
  assert.match(r.stdout, /tier 1 {2}lb -> gateways: 240 requests/);
  assert.match(r.stdout, /tier 2 {2}gw1 -> pods: 120 requests.*SKEWED/);
  assert.match(r.stdout, /^ +pod1 +84 +70\.0% +25\.0% /m, "gw1's pod1: 70% of its 120");
  assert.match(r.stdout, /verdict: SKEWED at tier 2 \(a gateway's choice of pod\): gw1 sends 70\.0% to pod1 \(expected 25\.0%\).*confident\)/);
  assert.deepEqual(leftovers(name), []);
});
