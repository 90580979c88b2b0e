// The address plan of the benchmarks' two lab nodes: node i (0 or 1) holds the pod
// subnet 10.244.<i+1>.0/24, whose network address is its VTEP address, with VTEP MAC
// 02:00:00:00:0<i+1>:01; each node's one peer is the other.
import { addFlannelPeer, addKernelVxlan, type KernelVxlanOptions } from "../lab/kernel-vxlan.js";
import type { UnderlayNode } from "../lab/underlay.js";

export const vtepMacOf = (i: number) => `02:00:00:00:0${i + 1}:01`;
const vtepIpOf = (i: number) => `10.244.${i + 1}.0`;

/** What node i's vxtun is told of the other node (a `peers` entry of its config). */
export function otherPeer(nodes: readonly UnderlayNode[], i: number) {
  const j = 1 - i;
  return { address: nodes[j].address, subnet: `${vtepIpOf(j)}/24`, vtepMac: vtepMacOf(j) };
}

/** Node i's kernel vxlan device, programmed as flanneld would for the other node. */
export async function kernelVxlanNode(
  nodes: readonly UnderlayNode[],
  i: number,
  o: Pick<KernelVxlanOptions, "mtu" | "finishChecksums"> = {},
): Promise<void> {
  const n = nodes[i];
  const dev = await addKernelVxlan({
    ns: n.ns,
    local: n.address,
    underlayDev: n.dev,
    vtepIp: vtepIpOf(i),
    vtepMac: vtepMacOf(i),
    ...o,
  });
  const peer = otherPeer(nodes, i);
  await addFlannelPeer(n.ns, dev, { ...peer, vtepIp: vtepIpOf(1 - i), publicIp: peer.address });
}
