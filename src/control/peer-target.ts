// How the agent programs another node's lease into the dataplane. The IPv4 half is the
// dataplane's peer (route, neighbour, FDB entry in one step). The IPv6 half of a
// dual-stack lease is what flanneld programs on flannel-v6.1: a permanent neighbour for
// the node's IPv6 VTEP address (its IPv6 subnet's network address) to BackendV6Data's
// VtepMAC, an FDB entry for that MAC, and an onlink route for the subnet via the VTEP
// address; in ipip mode a route whose outer destination is the node (6in4). One device
// carries both families over one underlay: the FDB entries send to PublicIP over an IPv4
// underlay (a vxtun node needs no IPv6 underlay address), to PublicIPv6 over an IPv6 one.
import type { Dataplane } from "../dataplane/dataplane.js";
import type { LeasePeer } from "./flannel.js";
import type { PeerTarget } from "./peers.js";

type Tables = Pick<Dataplane, "addPeer" | "delPeer" | "addRoute" | "delRoute" | "fdb" | "neigh6">;

/** The IPv6 VTEP address of a node: its IPv6 subnet's network address (flannel's). */
export function vtep6Of(subnet6: string): string {
  return subnet6.split("/")[0];
}

export function leaseTarget(
  dp: Tables,
  mode: "vxlan" | "vxlan-l2" | "ipip",
  underlay6 = false,
): PeerTarget {
  const v6 = new Map<string, LeasePeer>();
  // peerFromLease keeps only leases with a PublicIPv6 when the underlay is IPv6.
  const node = (p: LeasePeer) => (underlay6 ? p.publicIpv6! : p.address);
  const add6 = async (p: LeasePeer & { subnet6: string }) => {
    if (mode === "ipip") return dp.addRoute(p.subnet6, { remote: p.address });
    const mac = p.vtepMac6!;
    // flanneld's v6 device has a MAC of its own; a vxtun node publishes its one MAC twice.
    if (mac !== p.vtepMac) dp.fdb.replace(mac, node(p));
    dp.neigh6.replace(vtep6Of(p.subnet6), mac);
    // addRoute publishes the changed tables to the forwarders (neighbour and FDB too).
    await dp.addRoute(p.subnet6, { gateway: vtep6Of(p.subnet6), onlink: true });
  };
  const del6 = async (p: LeasePeer & { subnet6: string }) => {
    if (mode === "vxlan") {
      dp.neigh6.del(vtep6Of(p.subnet6));
      if (p.vtepMac6 !== p.vtepMac) dp.fdb.del(p.vtepMac6!);
    }
    await dp.delRoute(p.subnet6);
  };
  return {
    async addPeer(p: LeasePeer) {
      const { address, subnet, vtepMac, publicIpv6 } = p;
      await dp.addPeer({ address, subnet, vtepMac, ...(publicIpv6 ? { publicIpv6 } : {}) });
      if (p.subnet6 && mode !== "vxlan-l2") {
        await add6({ ...p, subnet6: p.subnet6 });
        v6.set(p.address, p);
      }
    },
    async delPeer(address: string) {
      const p = v6.get(address);
      v6.delete(address);
      if (p?.subnet6) await del6({ ...p, subnet6: p.subnet6 }).catch(() => undefined);
      await dp.delPeer(address);
    },
  };
}
