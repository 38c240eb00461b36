// The dialect and trusted tables survive the trip into rodata and back out of a section image
// (what `status` reads from the pinned rodata map), laid out by the object's own BTF.
import test from 'node:test';
import assert from 'node:assert/strict';
import { BpfObject } from '../../src/kernel/bpf-object.js';
import { objectPath } from '../../src/kernel/paths.js';
import { decodeToaTables, toaTablesRodata, rodataUint } from '../../src/capabilities/shared/toa-tables.js';
import { parseCidr } from '../../src/net/addr.js';
import { dialectTable } from '../../src/net/toa.js';

test('toa tables round-trip through a rodata image', () => {
  const obj = BpfObject.open(objectPath('src/capabilities/toa/toa'));
  try {
    const trusted = ['10.1.2.0/24', 'fd00:5::/48', '192.0.2.7/32'].map(parseCidr);
    const dialects = dialectTable(['200/8', '201/20']);
    const values: Record<string, number | Uint8Array> = { ...toaTablesRodata(obj, { trusted, dialects }), save_syn: 1 };
    const vars = obj.btf.datasec('.rodata');
    const image = new Uint8Array(Math.max(...[...vars.values()].map((v) => v.offset + v.size)));
    const dv = new DataView(image.buffer);
    for (const [name, v] of Object.entries(values)) {
      const at = vars.get(name)!;
      if (v instanceof Uint8Array) image.set(v, at.offset);
      else if (at.size === 1) dv.setUint8(at.offset, v);
      else dv.setUint32(at.offset, v, true);
    }
    const back = decodeToaTables(obj, image);
    assert.deepEqual(back.trusted.map((c) => c.text), ['10.1.2.0/24', 'fd00:5::/48', '192.0.2.7/32']);
    assert.deepEqual(back.dialects, dialects);
    assert.equal(rodataUint(obj, image, 'save_syn'), 1);
  } finally {
    obj.close();
  }
});
