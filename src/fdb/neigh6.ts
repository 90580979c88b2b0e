// IPv6 neighbours, like `ip -6 neigh` on flannel-v6.1: the permanent entries flanneld
// programs (remote VTEP IPv6 address -> VTEP MAC). The L3 data path resolves a route's
// gateway through it once per route and table version (send.ts), so lookups here are
// control-path only and may build a key; NUD states stay with the IPv4 table
// (neigh.ts), since nothing on the IPv6 side snoops or resolves on the wire.

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

  constructor(opts: { dev?: string } = {}) {
    this.dev = opts.dev ?? "vxtun0";
  }

  get size(): number {
    return this.byIp.size;
  }

  /** MAC of the 16-byte address at buf[off], or -1. Builds a key: not per packet. */
  resolve(buf: Uint8Array, off = 0): number {
    return this.byIp.get(key(buf, off))?.mac ?? -1;
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
    if (!this.byIp.delete(key(a, 0))) {
      throw new TableError(
        "ENOENT",
        `no neighbour ${formatIpv6(a)} to delete: see neigh show for the table`,
      );
    }
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
    this.byIp.set(key(ip, 0), new Neigh6Entry(ip, mac));
  }
}

function key(buf: Uint8Array, off: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + off, IPV6_LEN).toString("hex");
}
