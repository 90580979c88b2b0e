// The address plan of the benchmarks' two lab nodes: node i (0 or 1) holds the pod
// subnet 10.244.<i+1>.0/24, whose network address is its VTEP address, with VTEP MAC
// 02:00:00:00:0<i+1>:01; each node's one peer is the other. IPv6: the pod subnet
// fd00:0:0:<i+1>::/64 with VTEP address fd00:0:0:<i+1>::, as flannel-v6.1 over the
// IPv4 underlay.
import { addFlannelPeer, addKernelVxlan, type KernelVxlanOptions } from "../lab/kernel-vxlan.js";
import type { NetnsLab } from "../lab/netns.js";
import type { UnderlayNode } from "../lab/underlay.js";
import type { VxtunProc } from "../lab/vxtun-process.js";
import { runOk } from "../system/exec.js";

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

/**
 * Node i's route to the other node's IPv6 pod subnet: on the kernel's flannel.1 as
 * flanneld programs flannel-v6.1 (VTEP address, permanent neighbour, onlink route), or
 * through vxtun's CLI (`via` its process: the same neighbour and route, or with `ipip`
 * a route whose remote is the node: 6in4). The lab turns IPv6 off in its nodes: on
 * again for the tunnel device.
 */
export async function ipv6PeerRoute(
  lab: NetnsLab,
  nodes: readonly UnderlayNode[],
  i: number,
  via: VxtunProc | "kernel",
  ipip = false,
): Promise<void> {
  const n = nodes[i];
  const j = 1 - i;
  const [net, vtep] = [`fd00:0:0:${j + 1}::/64`, `fd00:0:0:${j + 1}::`];
  const dev = via === "kernel" ? "flannel.1" : "vxtun0";
  await lab.execOk(n.ns, ["sysctl", "-qw", `net/ipv6/conf/${dev}/disable_ipv6=0`]);
  if (via === "kernel") {
    const ip6 = (...args: string[]) => runOk(["ip", "-n", n.ns, "-6", ...args]);
    await ip6("addr", "add", `fd00:0:0:${i + 1}::/128`, "dev", dev, "nodad");
    await ip6("neigh", "replace", vtep, "lladdr", vtepMacOf(j), "dev", dev, "nud", "permanent");
    await ip6("route", "replace", net, "via", vtep, "dev", dev, "onlink");
    return;
  }
  const cli = async (args: string[]) => {
    const r = await via.cli(args);
    if (r.code !== 0) throw new Error(`vxtun ${args.join(" ")}: ${r.stderr.trim()}`);
  };
  if (ipip) {
    await cli(["route", "add", net, "remote", nodes[j].address]);
  } else {
    await cli(["neigh", "add", vtep, "lladdr", vtepMacOf(j)]);
    await cli(["route", "add", net, "via", vtep, "onlink"]);
  }
}
