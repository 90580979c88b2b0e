// IPv6 routing table: the IPv4 table's contract (route.ts: one route per prefix, add /
// replace / del / setMtu, a version that moves on every change) over 128-bit prefixes,
// with the Lpm6 trie (lpm6.ts) for the per-packet lookup, which reads the destination
// where it lies in the packet.

import { formatIpv4 } from "../encap/addr.js";
import { formatIpv6, IPV6_LEN, isZeroIpv6, maskIpv6 } from "../encap/addr6.js";
import { TableError } from "./errors.js";
import { type Ipv4Input, type Ipv6Input, toIpv4, toIpv6, toPrefix6, toUint } from "./input.js";
import { Lpm6 } from "./lpm6.js";
import { formatRouteView, type RouteJson, type RouteView, routeViewJson } from "./route-text.js";

export class Route6 {
  constructor(
    /** Network address, 16 bytes; compare with `len`. */
    readonly prefix: Uint8Array,
    readonly len: number,
    /** Next hop (the remote VTEP's IPv6 address in flannel's v6 mode); undefined = on-link. */
    readonly gateway: Uint8Array | undefined,
    readonly onlink: boolean,
    /** IPv4 underlay address of the remote node (6in4 outer destination); 0 = none. */
    readonly remote: number,
    /** Path MTU for this route; 0 = the device MTU. */
    public mtu: number,
    readonly metric: number,
    readonly dev: string,
  ) {}
}

export interface Route6Spec {
  gateway?: Ipv6Input;
  onlink?: boolean;
  remote?: Ipv4Input;
  mtu?: number;
  metric?: number;
  dev?: string;
}

export class RouteTable6 {
  /** Bumped by every change that can alter what a lookup returns (see RouteTable). */
  version = 0;
  readonly dev: string;
  private readonly lpm = new Lpm6();
  /** Per prefix length: network address as hex -> id. */
  private readonly byLen: Map<string, number>[] = [];
  /** Lengths that hold at least one prefix, longest first: the fallback search list. */
  private lens: number[] = [];
  /** id -> route; slot 0 unused so that 0 can mean "no route" in the trie. */
  private readonly routes: (Route6 | undefined)[] = [undefined];
  private readonly freeIds: number[] = [];

  constructor(opts: { dev?: string } = {}) {
    this.dev = opts.dev ?? "vxtun0";
    for (let l = 0; l <= 128; l++) this.byLen.push(new Map());
  }

  get size(): number {
    return this.routes.length - 1 - this.freeIds.length;
  }

  /** Longest-prefix match for the 16-byte address at buf[off]. Allocation-free. */
  lookup(buf: Uint8Array, off: number): Route6 | undefined {
    const id = this.lpm.find(buf, off);
    return id === 0 ? undefined : this.routes[id];
  }

  /** Exact prefix. */
  get(prefix: Ipv6Input, len: number): Route6 | undefined {
    const p = toPrefix6(prefix, len);
    const id = this.byLen[p.len].get(key(p.addr));
    return id === undefined ? undefined : this.routes[id];
  }

  /** `ip -6 route add`: fails if the prefix exists. */
  add(prefix: Ipv6Input, len: number, spec: Route6Spec = {}): Route6 {
    this.version++;
    const p = toPrefix6(prefix, len);
    if (this.byLen[p.len].has(key(p.addr))) {
      throw new TableError(
        "EEXIST",
        `route ${showPrefix6(p.addr, p.len)} already exists: use replace to change it`,
      );
    }
    return this.insert(this.build(p.addr, p.len, spec));
  }

  /** `ip -6 route replace`: create or overwrite. */
  replace(prefix: Ipv6Input, len: number, spec: Route6Spec = {}): Route6 {
    this.version++;
    const p = toPrefix6(prefix, len);
    const route = this.build(p.addr, p.len, spec);
    const id = this.byLen[p.len].get(key(p.addr));
    if (id === undefined) return this.insert(route);
    this.routes[id] = route;
    return route;
  }

  /** `ip -6 route del`. */
  del(prefix: Ipv6Input, len: number): void {
    this.version++;
    const p = toPrefix6(prefix, len);
    const map = this.byLen[p.len];
    const k = key(p.addr);
    const id = map.get(k);
    if (id === undefined) {
      throw new TableError(
        "ENOENT",
        `no route ${showPrefix6(p.addr, p.len)} to delete: see route show for the table`,
      );
    }
    map.delete(k);
    if (map.size === 0) this.lens = this.lens.filter((l) => l !== p.len);
    const fb = this.covering(p.addr, p.len);
    this.lpm.remove(p.addr, p.len, id, fb, fb === 0 ? -1 : this.routes[fb]!.len);
    this.routes[id] = undefined;
    this.freeIds.push(id);
  }

  /** Set a route's path MTU (PMTU discovery, or `ip -6 route change ... mtu`). */
  setMtu(prefix: Ipv6Input, len: number, mtu: number): void {
    this.version++;
    const route = this.get(prefix, len);
    if (route === undefined) {
      const p = toPrefix6(prefix, len);
      throw new TableError(
        "ENOENT",
        `no route ${showPrefix6(p.addr, p.len)}: add it before setting its MTU`,
      );
    }
    // IPv6 links carry at least 1280 bytes (RFC 8200 §5).
    route.mtu = toUint(mtu, 1280, 65535, "IPv6 MTU");
  }

  /** Routes sorted by address, then prefix length. */
  list(): Route6[] {
    const out: Route6[] = [];
    for (const r of this.routes) if (r !== undefined) out.push(r);
    return out.sort((a, b) => Buffer.compare(a.prefix, b.prefix) || a.len - b.len);
  }

  /** `ip -6 route show` text. */
  show(): string {
    return this.list()
      .map((r) => `${formatRoute6(r)}\n`)
      .join("");
  }

  /** `ip -j -6 route show` objects. */
  showJson(): RouteJson[] {
    return this.list().map((r) => routeViewJson(view(r)));
  }

  private build(prefix: Uint8Array, len: number, spec: Route6Spec): Route6 {
    const gateway = spec.gateway === undefined ? undefined : toIpv6(spec.gateway, "gateway");
    const gw = gateway !== undefined && !isZeroIpv6(gateway) ? gateway : undefined;
    const onlink = spec.onlink ?? false;
    if (onlink && gw === undefined) {
      throw new TableError("EINVAL", "onlink needs a gateway: give gateway or drop onlink");
    }
    return new Route6(
      prefix,
      len,
      gw,
      onlink,
      spec.remote === undefined ? 0 : toIpv4(spec.remote, "remote"),
      spec.mtu === undefined ? 0 : toUint(spec.mtu, 1280, 65535, "IPv6 MTU"),
      toUint(spec.metric ?? 0, 0, 0xffffffff, "metric"),
      spec.dev ?? this.dev,
    );
  }

  private insert(route: Route6): Route6 {
    const id = this.freeIds.pop() ?? this.routes.length;
    this.routes[id] = route;
    const map = this.byLen[route.len];
    if (map.size === 0) this.lens = [...this.lens, route.len].sort((a, b) => b - a);
    map.set(key(route.prefix), id);
    this.lpm.insert(route.prefix, route.len, id);
    return route;
  }

  /** Id of the longest stored prefix strictly shorter than len covering prefix, or 0. */
  private covering(prefix: Uint8Array, len: number): number {
    for (const l of this.lens) {
      if (l >= len) continue;
      const id = this.byLen[l].get(key(maskIpv6(prefix, l)));
      if (id !== undefined) return id;
    }
    return 0;
  }
}

function key(addr: Uint8Array): string {
  return Buffer.from(addr.buffer, addr.byteOffset, IPV6_LEN).toString("hex");
}

/** "default", a bare address for a /128 (as iproute2 prints host routes), else "addr/len". */
export function showPrefix6(prefix: Uint8Array, len: number): string {
  if (len === 0) return "default";
  return len === 128 ? formatIpv6(prefix) : `${formatIpv6(prefix)}/${len}`;
}

function view(r: Route6): RouteView {
  return {
    family: 6,
    dst: showPrefix6(r.prefix, r.len),
    remote: r.remote !== 0 ? formatIpv4(r.remote) : undefined,
    gateway: r.gateway !== undefined ? formatIpv6(r.gateway) : undefined,
    dev: r.dev,
    metric: r.metric,
    onlink: r.onlink,
    mtu: r.mtu,
  };
}

/** One `ip -6 route show` line (no newline). */
export function formatRoute6(r: Route6): string {
  return formatRouteView(view(r));
}
