// A Linux kernel vxlan device programmed exactly the way flanneld programs flannel.1:
// learning off, one permanent neighbour + one FDB entry + one onlink route per peer.
// Labs and tests use it as the reference peer vxtun must interoperate with, and the
// benchmarks as the baseline vxtun is measured against.
import { runOk } from "../system/exec.js";
import {
  addrAdd,
  bridge,
  ip,
  linkSetMaster,
  linkSetUp,
  neighReplace,
  routeReplace,
} from "../system/iproute.js";

export interface KernelVxlanOptions {
  ns: string;
  dev?: string;
  vni?: number;
  port?: number;
  /** Underlay address and interface. */
  local: string;
  underlayDev: string;
  /** VTEP address (x.y.z.0 of this node's subnet, as flannel assigns it). */
  vtepIp: string;
  vtepMac: string;
  mtu?: number;
  /** vxlan-l2 style: no address, the device joins this bridge. */
  bridge?: string;
  /** Learn remote MACs from received frames (flannel turns this off). */
  learning?: boolean;
  /**
   * Finish inner checksums in software before they leave over the veth (default true):
   * needed when the receiver is userspace (vxtun), which no NIC stands in front of.
   * A kernel-to-kernel baseline leaves it off, or it would measure a handicapped kernel.
   */
  finishChecksums?: boolean;
}

export async function addKernelVxlan(o: KernelVxlanOptions): Promise<string> {
  const dev = o.dev ?? "flannel.1";
  await ip(o.ns, [
    ...["link", "add", dev, "type", "vxlan", "id", String(o.vni ?? 1), "local", o.local],
    ...["dev", o.underlayDev, "dstport", String(o.port ?? 8472), "nolearning"],
  ]);
  await ip(o.ns, ["link", "set", dev, "address", o.vtepMac, "mtu", String(o.mtu ?? 1450)]);
  // docs/kernel-interfaces.md: over veth the kernel would leave inner checksums for a NIC that
  // isn't there; finishing them in software is what a real NIC would do.
  if (o.finishChecksums !== false) {
    await runOk(["ip", "netns", "exec", o.ns, "ethtool", "-K", o.underlayDev, "tx", "off"]);
  }
  if (o.bridge) await linkSetMaster(o.ns, dev, o.bridge);
  else await addrAdd(o.ns, dev, `${o.vtepIp}/32`);
  await linkSetUp(o.ns, dev);
  return dev;
}

export interface FlannelPeer {
  /** Remote node's pod subnet, e.g. 10.244.1.0/24. */
  subnet: string;
  /** Remote VTEP address (subnet's network address) and MAC. */
  vtepIp: string;
  vtepMac: string;
  /** Remote node's underlay address. */
  publicIp: string;
}

/** What flanneld does when it sees a peer's lease. */
export async function addFlannelPeer(ns: string, dev: string, p: FlannelPeer): Promise<void> {
  await neighReplace(ns, { dev, addr: p.vtepIp, lladdr: p.vtepMac });
  await bridge(ns, ["fdb", "append", p.vtepMac, "dev", dev, "dst", p.publicIp]);
  await routeReplace(ns, { dst: p.subnet, via: p.vtepIp, dev, onlink: true });
}
