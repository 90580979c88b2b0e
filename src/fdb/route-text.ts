// How routes print, for both families: `ip route show` text and `ip -j route show`
// objects, in iproute2's attribute order, from a view with the addresses already
// written as text (route.ts and route6.ts make it).

export interface RouteView {
  /** iproute2 prints `scope link` for gateway-less IPv4 routes only. */
  family: 4 | 6;
  /** "default", a host address (iproute2 drops /32 and /128) or "addr/len". */
  dst: string;
  /** Underlay destination of an encapsulating route (vxtun's `encap ip dst`). */
  remote: string | undefined;
  gateway: string | undefined;
  dev: string;
  metric: number;
  onlink: boolean;
  /** 0 = the device MTU. */
  mtu: number;
}

/** One object of `ip -j route show`. */
export interface RouteJson {
  dst: string;
  /** vxtun extension: the route's underlay destination, shown as `encap ip dst` in text. */
  encap?: { type: "ip"; dst: string };
  gateway?: string;
  dev: string;
  scope?: "link";
  metric?: number;
  flags: string[];
  metrics?: { mtu: number }[];
}

/** One `ip route show` line (no newline). */
export function formatRouteView(r: RouteView): string {
  let s = r.dst;
  if (r.remote !== undefined) s += ` encap ip dst ${r.remote}`;
  if (r.gateway !== undefined) s += ` via ${r.gateway}`;
  s += ` dev ${r.dev}`;
  if (r.family === 4 && r.gateway === undefined) s += " scope link";
  if (r.metric !== 0) s += ` metric ${r.metric}`;
  if (r.onlink) s += " onlink";
  if (r.mtu !== 0) s += ` mtu ${r.mtu}`;
  return s;
}

export function routeViewJson(r: RouteView): RouteJson {
  return {
    dst: r.dst,
    ...(r.remote !== undefined ? { encap: { type: "ip" as const, dst: r.remote } } : {}),
    ...(r.gateway !== undefined ? { gateway: r.gateway } : {}),
    dev: r.dev,
    ...(r.family === 4 && r.gateway === undefined ? { scope: "link" as const } : {}),
    ...(r.metric !== 0 ? { metric: r.metric } : {}),
    flags: r.onlink ? ["onlink"] : [],
    ...(r.mtu !== 0 ? { metrics: [{ mtu: r.mtu }] } : {}),
  };
}
