// A gateway lab for one test file (`lab up --gateways 2 --pods 4`: balancer -> gw1, gw2 -> pod1..4
// on node1, node2 over IPIP), built before its tests and taken down, checked gone, after them.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { labDown, labUp, leftovers } from '../../../src/lab/lab.js';
import type { LabState } from '../../../src/lab/state.js';

export interface GatewayLab {
  readonly state: LabState;
  /** the namespace of a lab node (gw1, node2, pod3, client1, lb, ...) */
  ns(node: string): string;
}

export function useGatewayLab(tag: string): GatewayLab {
  const name = `${tag}${process.pid % 100000}`;
  let state: LabState | null = null;
  before(async () => {
    state = await labUp({ name, clients: 1, servers: 2, hops: [0], ipv6: false, port: 80,
      toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 }, gateways: 2, pods: 4 });
  });
  after(async () => {
    await labDown(name);
    assert.deepEqual(leftovers(name), []);
  });
  return {
    get state() { return state!; },
    ns: (node) => state!.topology.nodes.find((n) => n.name === node)!.netns,
  };
}
