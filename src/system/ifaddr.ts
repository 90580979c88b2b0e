// The node's interfaces and default route as the underlay choice needs them (flanneld's
// rule: the default route's interface and its first IPv4 address), read with iproute2 in
// one namespace ("" = the one we run in).
import { ipJson } from "./iproute.js";

export interface Iface {
  name: string;
  mtu: number;
  /** IPv4 addresses in the kernel's order (the first is the primary one). */
  ipv4: string[];
  /** Global IPv6 addresses in the kernel's order (link-local ones cannot be an underlay). */
  ipv6?: string[];
}

export async function listInterfaces(ns = ""): Promise<Iface[]> {
  const links = await ipJson<
    {
      ifname: string;
      mtu: number;
      addr_info?: { family: string; local: string; scope?: string }[];
    }[]
  >(ns, ["addr", "show"]);
  return links.map((l) => ({
    name: l.ifname,
    mtu: l.mtu,
    ipv4: (l.addr_info ?? []).filter((a) => a.family === "inet").map((a) => a.local),
    ipv6: (l.addr_info ?? [])
      .filter((a) => a.family === "inet6" && a.scope === "global")
      .map((a) => a.local),
  }));
}

/** The interface of the default route (IPv4, or IPv6) with the lowest metric, if any. */
export async function defaultRouteInterface(
  ns = "",
  family: "ipv4" | "ipv6" = "ipv4",
): Promise<string | undefined> {
  const routes = await ipJson<{ dev?: string; metric?: number }[]>(ns, [
    family === "ipv6" ? "-6" : "-4",
    "route",
    "show",
    "default",
  ]);
  const sorted = routes.filter((r) => r.dev).sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
  return sorted[0]?.dev;
}
