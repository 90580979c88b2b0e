// The node's interfaces and default route as the underlay choice needs them (flanneld's
// rule: the default route's interface and its first IPv4 address), read over netlink in
// one namespace ("" = the one we run in). Netlink, not `ip -json`: this runs on every
// agent start, where two iproute2 processes cost tens of milliseconds before forwarding.
import { formatIpv4 } from "../encap/addr.js";
import { withNetlink } from "./netlink.js";

export interface Iface {
  name: string;
  mtu: number;
  /** IPv4 addresses in the kernel's order (the first is the primary one). */
  ipv4: string[];
  /** Global IPv6 addresses in the kernel's order (link-local ones cannot be an underlay). */
  ipv6?: string[];
}

export async function listInterfaces(ns = ""): Promise<Iface[]> {
  return withNetlink(ns, (nl) => {
    const v4 = nl.addrs();
    const v6 = nl.globalAddrs6();
    return nl.links().map((l) => ({
      name: l.name,
      mtu: l.mtu,
      ipv4: v4.filter((a) => a.index === l.index).map((a) => formatIpv4(a.addr)),
      ipv6: v6.get(l.index) ?? [],
    }));
  });
}

/** The interface of the default route (IPv4, or IPv6) with the lowest metric, if any. */
export async function defaultRouteInterface(
  ns = "",
  family: "ipv4" | "ipv6" = "ipv4",
): Promise<string | undefined> {
  return withNetlink(ns, (nl) => {
    const [best] = nl.defaultRoutes(family).sort((a, b) => a.metric - b.metric);
    return best && nl.links().find((l) => l.index === best.oif)?.name;
  });
}
