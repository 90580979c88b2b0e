// IPv4 routing table: exact-prefix index for control operations, plus the Lpm trie
// (lpm.ts, see there for why that structure) for per-packet longest-prefix match.
//
// One route per prefix: `metric` is carried and printed but does not select between
// routes (vxtun programs one route per remote node's subnet, as flanneld does).

import { formatIpv4, prefixMask } from "../encap/addr.js";
import { TableError } from "./errors.js";
import { type Ipv4Input, toIpv4, toPrefix, toUint } from "./input.js";
import { Lpm } from "./lpm.js";
import { formatRouteView, type RouteJson, type RouteView, routeViewJson } from "./route-text.js";

export type { RouteJson } from "./route-text.js";

export class Route {
  constructor(
    readonly prefix: number,
    readonly len: number,
    /** Next hop (e.g. the remote VTEP's address in flannel mode); 0 = directly connected. */
    readonly gateway: number,
    /** Gateway used without a connected route covering it (flannel's `onlink`). */
    readonly onlink: boolean,
    /** Underlay address of the remote node (IPIP outer destination); 0 = none. */
    readonly remote: number,
    /** Path MTU for this route; 0 = the device MTU. Lowered by PMTU discovery via setMtu. */
    public mtu: number,
    readonly metric: number,
    readonly dev: string,
  ) {}
}

export interface RouteSpec {
  gateway?: Ipv4Input;
  onlink?: boolean;
  remote?: Ipv4Input;
  mtu?: number;
  metric?: number;
  dev?: string;
}

export class RouteTable {
  /**
   * Bumped by every change that can alter what a lookup returns, so a reader may cache
   * lookups (the forwarder's destination cache) and drop them when this moves.
   */
  version = 0;
  readonly dev: string;
  private readonly lpm = new Lpm();
  /** Per prefix length: network address (int32, so keys stay small integers) -> id. */
  private readonly byLen: Map<number, number>[] = [];
  /** Lengths that hold at least one prefix, longest first: the fallback search list. */
  private lens: number[] = [];
  /** id -> route; slot 0 unused so that 0 can mean "no route" in the trie. */
  private readonly routes: (Route | undefined)[] = [undefined];
  private readonly freeIds: number[] = [];

  constructor(opts: { dev?: string } = {}) {
    this.dev = opts.dev ?? "vxtun0";
    for (let l = 0; l <= 32; l++) this.byLen.push(new Map());
  }

  get size(): number {
    return this.routes.length - 1 - this.freeIds.length;
  }

  /** Longest-prefix match; ip as uint32 (int32 also works). Allocation-free. */
  lookup(ip: number): Route | undefined {
    const id = this.lpm.find(ip);
    return id === 0 ? undefined : this.routes[id];
  }

  /** Exact prefix. */
  get(prefix: Ipv4Input, len: number): Route | undefined {
    const p = toPrefix(prefix, len);
    const id = this.byLen[p.len].get(p.addr | 0);
    return id === undefined ? undefined : this.routes[id];
  }

  /** `ip route add`: fails if the prefix exists. */
  add(prefix: Ipv4Input, len: number, spec: RouteSpec = {}): Route {
    this.version++;
    const p = toPrefix(prefix, len);
    if (this.byLen[p.len].has(p.addr | 0)) {
      throw new TableError(
        "EEXIST",
        `route ${showPrefix(p.addr, p.len)} already exists: use replace to change it`,
      );
    }
    return this.insert(p.addr, p.len, this.build(p.addr, p.len, spec));
  }

  /** `ip route replace`: create or overwrite. */
  replace(prefix: Ipv4Input, len: number, spec: RouteSpec = {}): Route {
    this.version++;
    const p = toPrefix(prefix, len);
    const route = this.build(p.addr, p.len, spec);
    const id = this.byLen[p.len].get(p.addr | 0);
    if (id === undefined) return this.insert(p.addr, p.len, route);
    // Same prefix, same id: the trie already points here.
    this.routes[id] = route;
    return route;
  }

  /** `ip route del`. */
  del(prefix: Ipv4Input, len: number): void {
    this.version++;
    const p = toPrefix(prefix, len);
    const map = this.byLen[p.len];
    const id = map.get(p.addr | 0);
    if (id === undefined) {
      throw new TableError(
        "ENOENT",
        `no route ${showPrefix(p.addr, p.len)} to delete: see route show for the table`,
      );
    }
    map.delete(p.addr | 0);
    if (map.size === 0) this.lens = this.lens.filter((l) => l !== p.len);
    const fb = this.covering(p.addr, p.len);
    this.lpm.remove(p.addr, p.len, id, fb, fb === 0 ? -1 : this.routes[fb]!.len);
    this.routes[id] = undefined;
    this.freeIds.push(id);
  }

  /** Set a route's path MTU (PMTU discovery, or `ip route change ... mtu`). */
  setMtu(prefix: Ipv4Input, len: number, mtu: number): void {
    this.version++;
    const p = toPrefix(prefix, len);
    const route = this.get(p.addr, p.len);
    if (route === undefined) {
      throw new TableError(
        "ENOENT",
        `no route ${showPrefix(p.addr, p.len)}: add it before setting its MTU`,
      );
    }
    route.mtu = toUint(mtu, 68, 65535, "MTU");
  }

  /** Routes sorted by address, then prefix length. */
  list(): Route[] {
    const out: Route[] = [];
    for (const r of this.routes) if (r !== undefined) out.push(r);
    return out.sort((a, b) => a.prefix - b.prefix || a.len - b.len);
  }

  /** `ip route show` text. */
  show(): string {
    return this.list()
      .map((r) => `${formatRoute(r)}\n`)
      .join("");
  }

  /** `ip -j route show` objects. */
  showJson(): RouteJson[] {
    return this.list().map(routeJson);
  }

  private build(prefix: number, len: number, spec: RouteSpec): Route {
    const gateway = spec.gateway === undefined ? 0 : toIpv4(spec.gateway, "gateway");
    const onlink = spec.onlink ?? false;
    if (onlink && gateway === 0) {
      throw new TableError("EINVAL", "onlink needs a gateway: give gateway or drop onlink");
    }
    return new Route(
      prefix,
      len,
      gateway,
      onlink,
      spec.remote === undefined ? 0 : toIpv4(spec.remote, "remote"),
      spec.mtu === undefined ? 0 : toUint(spec.mtu, 68, 65535, "MTU"),
      toUint(spec.metric ?? 0, 0, 0xffffffff, "metric"),
      spec.dev ?? this.dev,
    );
  }

  private insert(prefix: number, len: number, route: Route): Route {
    const id = this.freeIds.pop() ?? this.routes.length;
    this.routes[id] = route;
    const map = this.byLen[len];
    if (map.size === 0) this.lens = [...this.lens, len].sort((a, b) => b - a);
    map.set(prefix | 0, id);
    this.lpm.insert(prefix, len, id);
    return route;
  }

  /** Id of the longest stored prefix strictly shorter than len covering prefix, or 0. */
  private covering(prefix: number, len: number): number {
    for (const l of this.lens) {
      if (l >= len) continue;
      const id = this.byLen[l].get((prefix & prefixMask(l)) | 0);
      if (id !== undefined) return id;
    }
    return 0;
  }
}

/** "default", "a.b.c.d" for a /32 (as iproute2 prints host routes), else "a.b.c.d/len". */
export function showPrefix(prefix: number, len: number): string {
  if (len === 0) return "default";
  return len === 32 ? formatIpv4(prefix) : `${formatIpv4(prefix)}/${len}`;
}

/** The family-neutral view that route-text.ts prints. */
function view(r: Route): RouteView {
  return {
    family: 4,
    dst: showPrefix(r.prefix, r.len),
    remote: r.remote !== 0 ? formatIpv4(r.remote) : undefined,
    gateway: r.gateway !== 0 ? formatIpv4(r.gateway) : undefined,
    dev: r.dev,
    metric: r.metric,
    onlink: r.onlink,
    mtu: r.mtu,
  };
}

/** One `ip route show` line (no newline), in iproute2's attribute order. */
export function formatRoute(r: Route): string {
  return formatRouteView(view(r));
}

export function routeJson(r: Route): RouteJson {
  return routeViewJson(view(r));
}
