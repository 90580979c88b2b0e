// IPv6 neighbours, like `ip -6 neigh` on flannel-v6.1: the permanent entries flanneld
// programs (remote VTEP IPv6 address -> VTEP MAC). The L3 data path resolves a route's
// gateway through it once per route and table version (send.ts); the vxlan-l2 bridge
// port answers neighbour solicitations from it (NDP proxy, bridge.ts) per packet, so
// resolve() goes through a numeric hash of the address and allocates nothing. NUD
// states stay with the IPv4 table (neigh.ts), since nothing on the IPv6 side snoops.

import { formatMac } from "../encap/addr.js";
import { formatIpv6, IPV6_LEN } from "../encap/addr6.js";
import { TableError } from "./errors.js";
import { type Ipv6Input, type MacInput, toIpv6, toMac } from "./input.js";
import type { NeighJson } from "./neigh.js";

export class Neigh6Entry {
  constructor(
    /** 16 bytes, network order. */
    readonly ip: Uint8Array,
    readonly mac: number,
  ) {}
}

export class Neigh6Table {
  /** Bumped by every change, so readers may cache resolutions (see NeighTable.version). */
  version = 0;
  readonly dev: string;
  private readonly byIp = new Map<string, Neigh6Entry>();
  /** The same entries by hash6() of the address (a list per hash: collisions). */
  private readonly byHash = new Map<number, Neigh6Entry[]>();

  constructor(opts: { dev?: string } = {}) {
    this.dev = opts.dev ?? "vxtun0";
  }

  get size(): number {
    return this.byIp.size;
  }

  /** MAC of the 16-byte address at buf[off], or -1. Allocates nothing. */
  resolve(buf: Uint8Array, off = 0): number {
    const list = this.byHash.get(hash6(buf, off));
    if (list === undefined) return -1;
    for (let i = 0; i < list.length; i++) if (sameIp(list[i].ip, buf, off)) return list[i].mac;
    return -1;
  }

  /** `ip -6 neigh add IP lladdr MAC nud permanent`: fails if IP has an entry. */
  add(ip: Ipv6Input, mac: MacInput): void {
    const a = toIpv6(ip);
    if (this.byIp.has(key(a, 0))) {
      throw new TableError(
        "EEXIST",
        `neighbour ${formatIpv6(a)} already exists: use replace to change it`,
      );
    }
    this.set(a, toMac(mac, "lladdr"));
  }

  /** `ip -6 neigh replace IP lladdr MAC nud permanent`: create or overwrite. */
  replace(ip: Ipv6Input, mac: MacInput): void {
    this.set(toIpv6(ip), toMac(mac, "lladdr"));
  }

  /** `ip -6 neigh del IP`. */
  del(ip: Ipv6Input): void {
    const a = toIpv6(ip);
    const old = this.byIp.get(key(a, 0));
    if (old === undefined) {
      throw new TableError(
        "ENOENT",
        `no neighbour ${formatIpv6(a)} to delete: see neigh show for the table`,
      );
    }
    this.byIp.delete(key(a, 0));
    this.unhash(old);
    this.version++;
  }

  /** Entries sorted by address. */
  entries(): Neigh6Entry[] {
    return [...this.byIp.values()].sort((a, b) => Buffer.compare(a.ip, b.ip));
  }

  /** `ip -6 neigh show` text; `dev` prints "dev <name>" as without a dev filter. */
  show(opts: { dev?: boolean } = {}): string {
    return this.entries()
      .map((e) => {
        const dev = opts.dev ? ` dev ${this.dev}` : "";
        return `${formatIpv6(e.ip)}${dev} lladdr ${formatMac(e.mac)} PERMANENT\n`;
      })
      .join("");
  }

  /** `ip -j -6 neigh show` objects. */
  showJson(): NeighJson[] {
    return this.entries().map((e) => ({
      dst: formatIpv6(e.ip),
      dev: this.dev,
      lladdr: formatMac(e.mac),
      state: ["PERMANENT"],
    }));
  }

  private set(ip: Uint8Array, mac: number): void {
    this.version++;
    const old = this.byIp.get(key(ip, 0));
    if (old !== undefined) this.unhash(old);
    const e = new Neigh6Entry(ip, mac);
    this.byIp.set(key(ip, 0), e);
    const h = hash6(ip, 0);
    const list = this.byHash.get(h);
    if (list === undefined) this.byHash.set(h, [e]);
    else list.push(e);
  }

  private unhash(e: Neigh6Entry): void {
    const h = hash6(e.ip, 0);
    const list = this.byHash.get(h);
    if (list === undefined) return;
    const rest = list.filter((x) => x !== e);
    if (rest.length === 0) this.byHash.delete(h);
    else this.byHash.set(h, rest);
  }
}

/** A small integer (a Smi: never boxed) from the 16 bytes at buf[off]. */
function hash6(buf: Uint8Array, off: number): number {
  let h = 0;
  for (let i = 0; i < IPV6_LEN; i++) h = (Math.imul(h, 31) + buf[off + i]) | 0;
  return h & 0x3fffffff;
}

function sameIp(ip: Uint8Array, buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < IPV6_LEN; i++) if (ip[i] !== buf[off + i]) return false;
  return true;
}

function key(buf: Uint8Array, off: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + off, IPV6_LEN).toString("hex");
}
