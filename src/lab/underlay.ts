// The lab's underlay: one "switch" namespace holding a Linux bridge, and one namespace
// per node, each with an eth0 veth plugged into that bridge. Addresses come from
// 198.18.0.0/15 (RFC 2544's benchmarking range), so nothing can leak to a real network;
// an IPv6 underlay adds 2001:2::/64 (RFC 5180's benchmarking range) on the same links
// and the nodes' `address` is the IPv6 one (VXLAN over IPv6, as flannel-v6.1 runs).

import { ip, linkSetMaster } from "../system/iproute.js";
import type { NetnsLab } from "./netns.js";

export interface UnderlayNode {
  /** Short name, e.g. "n1". */
  name: string;
  /** Full namespace name. */
  ns: string;
  /** Underlay address, e.g. 198.18.0.1 (IPv6 underlay: 2001:2::1). */
  address: string;
  /** The node's IPv4 address on the underlay, e.g. 198.18.0.1 (either family). */
  address4: string;
  /** Underlay interface inside the node namespace. */
  dev: string;
}

export interface Underlay {
  switchNs: string;
  nodes: UnderlayNode[];
}

export type UnderlayFamily = "ipv4" | "ipv6";
export const UNDERLAY_FAMILIES: readonly UnderlayFamily[] = ["ipv4", "ipv6"];

/** The underlay address of node i (1-based). */
function underlayAddress(i: number): string {
  return `198.18.0.${i}`;
}

/** The IPv6 underlay address of node i (1-based), in RFC 5180's 2001:2::/48. */
export function underlayAddress6(i: number): string {
  return `2001:2::${i.toString(16)}`;
}

export async function buildUnderlay(
  lab: NetnsLab,
  count: number,
  mtu = 1500,
  family: UnderlayFamily = "ipv4",
): Promise<Underlay> {
  if (count < 1 || count > 250) throw new Error(`node count ${count} out of range 1..250`);
  const switchNs = await lab.addNs("sw");
  await ip(switchNs, ["link", "add", "br0", "mtu", String(mtu), "type", "bridge"]);
  await ip(switchNs, ["link", "set", "br0", "up"]);
  const nodes: UnderlayNode[] = [];
  for (let i = 1; i <= count; i++) {
    const name = `n${i}`;
    const ns = await lab.addNs(name);
    const address = underlayAddress(i);
    await lab.veth(ns, "eth0", switchNs, `p${i}`, { cidrA: `${address}/24`, mtu });
    await linkSetMaster(switchNs, `p${i}`, "br0");
    // The node forwards between its pods and the tunnel; rp_filter would drop
    // replies that arrive on the tunnel for addresses routed elsewhere.
    for (const [k, v] of [
      ["net.ipv4.ip_forward", "1"],
      ["net.ipv4.conf.all.rp_filter", "0"],
      ["net.ipv4.conf.default.rp_filter", "0"],
      // An IPv4 lab: no router solicitations or MLD reports to muddy counters and FDBs.
      ["net.ipv6.conf.all.disable_ipv6", "1"],
      ["net.ipv6.conf.default.disable_ipv6", "1"],
    ]) {
      await lab.execOk(ns, ["sysctl", "-qw", `${k}=${v}`]);
    }
    let address6: string | undefined;
    if (family === "ipv6") {
      // IPv6 on the underlay link only (and lo); no DAD, so the address is usable at once.
      address6 = underlayAddress6(i);
      for (const d of ["lo", "eth0"]) {
        await lab.execOk(ns, ["sysctl", "-qw", `net.ipv6.conf.${d}.disable_ipv6=0`]);
      }
      await ip(ns, ["-6", "addr", "add", `${address6}/64`, "dev", "eth0", "nodad"]);
    }
    nodes.push({ name, ns, address: address6 ?? address, address4: address, dev: "eth0" });
  }
  return { switchNs, nodes };
}
