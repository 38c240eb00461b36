// `tcplens toa --save-syn` changes listeners (TCP_SAVE_SYN) for as long as toa is enabled, says so
// in status, and `toa disable` puts them back; without the flag no listener is touched.
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { SERVERS, ToaHarness } from './helpers/toa-harness.js';

const HELPERS = join(repoRoot, 'dist', 'test', 'kernel', 'helpers');

async function flagOf(h: ToaHarness, port: number): Promise<string> {
  const out = await h.pair.run(h.client, [process.execPath, join(HELPERS, 'tcp-client.js'), '--host', h.server.ip4, '--port', String(port)]);
  return (JSON.parse(out.trim().split('\n')[0]) as { seen: string }).seen;
}

test('--save-syn: on while enabled, shown in status, off again after disable', async (t) => {
  const h = new ToaHarness('ss');
  t.after(() => h.dispose());
  h.enable(['--save-syn']);
  const srv = await h.serve(SERVERS.saveSynFlag(9301));
  try {
    assert.equal(await flagOf(h, 9301), '1');
    const st = h.status();
    assert.equal(st.saveSyn, true);
    assert.equal(st.saveSynListeners, 1);
    const off = h.disable();
    assert.match(off.stdout, /TCP_SAVE_SYN turned off again on 1 listener/);
    assert.equal(await flagOf(h, 9301), '0', 'the listener is as it was before enable');
  } finally {
    srv.kill('SIGKILL');
  }
});

test('without --save-syn, listeners are left alone', async (t) => {
  const h = new ToaHarness('sn');
  t.after(() => h.dispose());
  h.enable();
  const srv = await h.serve(SERVERS.saveSynFlag(9302));
  try {
    assert.equal(await flagOf(h, 9302), '0');
    assert.equal(h.status().saveSynListeners, 0);
    h.disable();
  } finally {
    srv.kill('SIGKILL');
  }
});
