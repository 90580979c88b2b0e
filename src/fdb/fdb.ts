// VXLAN forwarding database, modelled on the kernel vxlan device's FDB (`bridge fdb` on a
// vxlan dev): inner MAC -> remote VTEP, learned from received frames or programmed
// statically, plus the all-zeros entry whose remotes get head-end replicated BUM traffic.
//
// Per-packet calls (lookup, learn, floodList) allocate nothing except an entry on first
// learn. Ageing is one periodic sweep, expire(now), not a timer per entry.

import { formatIpv4, formatMac, isMulticastMac, ZERO_MAC } from "../encap/addr.js";
import { ageSeconds, type Clock, monotonicClock } from "./clock.js";
import { TableError } from "./errors.js";
import { type Ipv4Input, type MacInput, toIpv4, toMac, toUint } from "./input.js";
import { MacMap } from "./machash.js";

/** One MAC -> remote mapping. Treat as read-only outside this module. */
export class FdbEntry {
  constructor(
    readonly mac: number,
    /** Remote VTEP, uint32 host order. */
    public remote: number,
    /** VNI to send with; the device's VNI unless set per entry. */
    public vni: number,
    /** UDP destination port; the device's port unless set per entry. */
    public port: number,
    /** Programmed (permanent): never aged, never moved by learning. */
    public isStatic: boolean,
    /** Last time the mapping was created, confirmed by a received frame, or changed. */
    public updated: number,
    /** Last time a lookup returned it. */
    public used: number,
  ) {}
}

/** What learn() did; a number so the receive path allocates nothing. */
export const Learn = {
  /** Known entry, same remote: `updated` refreshed. */
  Refreshed: 0,
  /** New dynamic entry. */
  Created: 1,
  /** Dynamic entry moved to the frame's remote (a VM/pod migrated). */
  Moved: 2,
  /**
   * A static entry maps this MAC to another remote. The kernel drops such frames (a
   * spoofed or misconfigured source); the caller should too.
   */
  StaticConflict: 3,
  /** Table at maxAddress: not learned (counted in refused_full). */
  RefusedFull: 4,
  /** Multicast or all-zeros source MAC: never learned. */
  Ignored: 5,
} as const;
export type LearnResult = (typeof Learn)[keyof typeof Learn];

export interface FdbOptions {
  clock?: Clock;
  /** Dynamic entries not refreshed for this long are removed; 0 disables ageing. */
  ageingMs?: number;
  /** Maximum unicast entries, static and learned together (as the kernel's maxaddress); 0 = unlimited. */
  maxAddress?: number;
  /** Device name, printed by show({ dev: true }). */
  dev?: string;
  /** Device VNI and UDP port: defaults for entries, and omitted when printing. */
  vni?: number;
  dstPort?: number;
  /** How remotes are written (default IPv4; an IPv6 underlay numbers its peers). */
  remotes?: RemoteCodec;
}

/** Remote addresses: text (or a number) in, the number the dataplane uses, text out. */
export interface RemoteCodec {
  parse(value: Ipv4Input, what: string): number;
  format(remote: number): string;
}

const IPV4_REMOTES: RemoteCodec = { parse: toIpv4, format: formatIpv4 };

export interface FdbEntryOptions {
  vni?: number;
  port?: number;
}

export interface FdbShowOptions {
  now?: number;
  /** Print "dev <name>", as `bridge fdb show` without a dev filter does. */
  dev?: boolean;
  /** Print "used <s>/<s>", as `bridge -s fdb show`. */
  stats?: boolean;
}

/** One row of `bridge -j -s fdb show`. */
export interface FdbJson {
  mac: string;
  ifname?: string;
  dst: string;
  port?: number;
  vni?: number;
  /** Seconds since last use / last update. */
  used: number;
  updated: number;
  flags: string[];
  /** "permanent" for static entries, "" for learned ones (NUD_REACHABLE prints empty). */
  state: string;
}

export const DEFAULT_AGEING_MS = 300_000;
export const DEFAULT_VXLAN_PORT = 8472;

export class Fdb {
  /**
   * Bumped by every change that can alter what a lookup returns, so a reader may cache
   * lookups (the forwarder's destination cache) and drop them when this moves.
   */
  version = 0;
  readonly counters = { learned: 0, aged: 0, refused_full: 0, moved: 0, static_conflict: 0 };
  readonly ageingMs: number;
  readonly maxAddress: number;
  readonly dev: string;
  readonly vni: number;
  readonly dstPort: number;
  readonly remotes: RemoteCodec;
  private readonly clock: Clock;
  private readonly byMac = new MacMap<FdbEntry>(256);
  // Mutated in place so the dataplane can hold the reference across batches.
  private readonly flood: number[] = [];
  private floodUpdated = 0;

  constructor(opts: FdbOptions = {}) {
    this.clock = opts.clock ?? monotonicClock;
    this.ageingMs = toUint(opts.ageingMs ?? DEFAULT_AGEING_MS, 0, 2 ** 40, "ageingMs");
    this.maxAddress = toUint(opts.maxAddress ?? 0, 0, 2 ** 31, "maxAddress");
    this.dev = opts.dev ?? "vxtun0";
    this.vni = toUint(opts.vni ?? 1, 0, 0xffffff, "VNI");
    this.dstPort = toUint(opts.dstPort ?? DEFAULT_VXLAN_PORT, 1, 0xffff, "port");
    this.remotes = opts.remotes ?? IPV4_REMOTES;
  }

  /** Number of unicast entries (the flood list is not counted). */
  get size(): number {
    return this.byMac.size;
  }

  /**
   * Destination for a unicast MAC; undefined means flood to floodList(). Marks it used.
   * The all-zeros MAC is never an entry here: its remotes are the flood list.
   */
  lookup(mac: number, now: number = this.clock()): Readonly<FdbEntry> | undefined {
    const e = this.byMac.get(mac);
    if (e !== undefined) e.used = now;
    return e;
  }

  /**
   * Learn from a received frame's inner source MAC and outer source IP. Ageing counts
   * from `updated`, which only a received frame refreshes (as recent kernels do; older
   * ones aged by last use), so an entry whose remote falls silent ages out even while
   * we keep sending to it, and the next frame from the MAC's new home re-learns it.
   */
  learn(mac: number, remoteIp: number, now: number = this.clock()): LearnResult {
    const remote = remoteIp >>> 0;
    if (mac === ZERO_MAC || isMulticastMac(mac)) return Learn.Ignored;
    const e = this.byMac.get(mac);
    if (e !== undefined) {
      if (e.remote === remote) {
        if (!e.isStatic) e.updated = now;
        return Learn.Refreshed;
      }
      if (e.isStatic) {
        this.counters.static_conflict++;
        return Learn.StaticConflict;
      }
      e.remote = remote;
      e.updated = now;
      this.counters.moved++;
      this.version++;
      return Learn.Moved;
    }
    if (this.maxAddress !== 0 && this.byMac.size >= this.maxAddress) {
      this.counters.refused_full++;
      return Learn.RefusedFull;
    }
    this.byMac.set(mac, new FdbEntry(mac, remote, this.vni, this.dstPort, false, now, now));
    this.counters.learned++;
    this.version++;
    return Learn.Created;
  }

  /** Remotes for broadcast, unknown unicast and multicast: the same array every call. */
  /**
   * Frames from `mac` via `remoteIp` were seen elsewhere (another forwarding queue, some
   * time ago): refresh the entry if it still maps there, create it if it aged out
   * meanwhile, but never move it: a newer frame may have moved it already.
   */
  refresh(mac: number, remoteIp: number, now: number = this.clock()): LearnResult {
    const e = this.byMac.get(mac);
    if (e === undefined) return this.learn(mac, remoteIp, now);
    if (e.isStatic || e.remote !== remoteIp >>> 0) return Learn.Ignored;
    e.updated = now;
    return Learn.Refreshed;
  }

  floodList(): readonly number[] {
    return this.flood;
  }

  /** Remove dynamic entries not updated for ageingMs. Returns how many were removed. */
  expire(now: number = this.clock()): number {
    if (this.ageingMs === 0) return 0;
    let n = 0;
    for (const e of this.byMac.values()) {
      if (!e.isStatic && now - e.updated >= this.ageingMs) {
        this.byMac.delete(e.mac);
        n++;
      }
    }
    this.counters.aged += n;
    if (n > 0) this.version++;
    return n;
  }

  /**
   * `bridge fdb add MAC dev vx dst IP [vni N] [port P]`: a permanent entry. For the
   * all-zeros MAC, the first flood remote (further ones need append).
   */
  add(mac: MacInput, dst: Ipv4Input, opts: FdbEntryOptions = {}): void {
    this.version++;
    const m = toMac(mac);
    const ip = this.remotes.parse(dst, "dst");
    if (m === ZERO_MAC) {
      if (this.flood.length > 0) {
        throw new TableError(
          "EEXIST",
          `flood entry 00:00:00:00:00:00 already exists: use append to add remote ${this.remotes.format(ip)}`,
        );
      }
      this.appendFlood(ip);
      return;
    }
    if (this.byMac.get(m) !== undefined) {
      throw new TableError(
        "EEXIST",
        `FDB entry ${formatMac(m)} already exists: use replace to change it`,
      );
    }
    this.insertStatic(m, ip, opts);
  }

  /** `bridge fdb append 00:00:00:00:00:00 dev vx dst IP`: one more flood remote. */
  append(mac: MacInput, dst: Ipv4Input): void {
    this.version++;
    const m = toMac(mac);
    const ip = this.remotes.parse(dst, "dst");
    if (m !== ZERO_MAC) {
      throw new TableError(
        "EINVAL",
        `append is for the flood entry 00:00:00:00:00:00 only: use add or replace for ${formatMac(m)}`,
      );
    }
    if (this.flood.includes(ip)) {
      throw new TableError(
        "EEXIST",
        `remote ${this.remotes.format(ip)} is already in the flood list: nothing to append`,
      );
    }
    this.appendFlood(ip);
  }

  /**
   * `bridge fdb replace`: create or overwrite as permanent (a learned entry becomes
   * static). For the all-zeros MAC the flood list becomes exactly [dst].
   */
  replace(mac: MacInput, dst: Ipv4Input, opts: FdbEntryOptions = {}): void {
    this.version++;
    const m = toMac(mac);
    const ip = this.remotes.parse(dst, "dst");
    if (m === ZERO_MAC) {
      this.flood.length = 0;
      this.appendFlood(ip);
      return;
    }
    const e = this.byMac.get(m);
    if (e === undefined) {
      this.insertStatic(m, ip, opts);
      return;
    }
    const { vni, port } = this.entryOptions(opts);
    const now = this.clock();
    e.remote = ip;
    e.vni = vni;
    e.port = port;
    e.isStatic = true;
    e.updated = now;
  }

  /**
   * `bridge fdb del`. For the all-zeros MAC, `dst` removes one flood remote and no `dst`
   * removes them all.
   */
  del(mac: MacInput, dst?: Ipv4Input): void {
    this.version++;
    const m = toMac(mac);
    const ip = dst === undefined ? undefined : this.remotes.parse(dst, "dst");
    if (m === ZERO_MAC) {
      if (this.flood.length === 0) {
        throw new TableError("ENOENT", "no flood entry 00:00:00:00:00:00 to delete");
      }
      if (ip === undefined) {
        this.flood.length = 0;
        return;
      }
      const i = this.flood.indexOf(ip);
      if (i < 0) {
        throw new TableError(
          "ENOENT",
          `remote ${this.remotes.format(ip)} is not in the flood list: see fdb show for the remotes`,
        );
      }
      this.flood.splice(i, 1);
      return;
    }
    const e = this.byMac.get(m);
    if (e === undefined || (ip !== undefined && e.remote !== ip)) {
      const where = ip === undefined ? "" : ` dst ${this.remotes.format(ip)}`;
      throw new TableError("ENOENT", `no FDB entry ${formatMac(m)}${where} to delete`);
    }
    this.byMac.delete(m);
  }

  /** Drop learned entries (`bridge fdb flush dynamic`), e.g. when the underlay changes. */
  flushDynamic(): number {
    this.version++;
    let n = 0;
    for (const e of this.byMac.values()) {
      if (!e.isStatic) {
        this.byMac.delete(e.mac);
        n++;
      }
    }
    return n;
  }

  /** Entries sorted by MAC: a snapshot for control and printing. */
  entries(): FdbEntry[] {
    return this.byMac.values().sort((a, b) => a.mac - b.mac);
  }

  /** `bridge fdb show dev <dev>` text, one line per entry and flood remote. */
  show(opts: FdbShowOptions = {}): string {
    const now = opts.now ?? this.clock();
    return this.rows(now)
      .map((r) => {
        let line = `${r.mac} `;
        if (opts.dev) line += `dev ${this.dev} `;
        line += `dst ${r.dst} `;
        if (r.port !== undefined) line += `port ${r.port} `;
        if (r.vni !== undefined) line += `vni ${r.vni} `;
        if (opts.stats) line += `used ${r.used}/${r.updated} `;
        line += "self";
        if (r.state !== "") line += ` ${r.state}`;
        return `${line}\n`;
      })
      .join("");
  }

  /** `bridge -j -s fdb show` objects (ifname included, ages always present). */
  showJson(now: number = this.clock()): FdbJson[] {
    return this.rows(now);
  }

  private rows(now: number): FdbJson[] {
    const out: FdbJson[] = [];
    for (const ip of this.flood) {
      out.push(this.row(ZERO_MAC, ip, this.vni, this.dstPort, true, now, this.floodUpdated, now));
    }
    for (const e of this.entries()) {
      out.push(this.row(e.mac, e.remote, e.vni, e.port, e.isStatic, e.used, e.updated, now));
    }
    return out;
  }

  private row(
    mac: number,
    dst: number,
    vni: number,
    port: number,
    isStatic: boolean,
    used: number,
    updated: number,
    now: number,
  ): FdbJson {
    // iproute2's key order; port and VNI only where they differ from the device's, as the
    // kernel reports them.
    return {
      mac: formatMac(mac),
      ifname: this.dev,
      dst: this.remotes.format(dst),
      ...(port !== this.dstPort ? { port } : {}),
      ...(vni !== this.vni ? { vni } : {}),
      used: ageSeconds(now, used),
      updated: ageSeconds(now, updated),
      flags: ["self"],
      state: isStatic ? "permanent" : "",
    };
  }

  private insertStatic(mac: number, ip: number, opts: FdbEntryOptions): void {
    if (isMulticastMac(mac)) {
      // Multicast groups are flooded; per-group remote lists are not modelled.
      throw new TableError(
        "EINVAL",
        `${formatMac(mac)} is a multicast MAC: add its remotes to the flood list with append 00:00:00:00:00:00`,
      );
    }
    if (this.maxAddress !== 0 && this.byMac.size >= this.maxAddress) {
      throw new TableError(
        "ENOSPC",
        `FDB is full (maxAddress ${this.maxAddress}): delete entries or raise maxAddress`,
      );
    }
    const { vni, port } = this.entryOptions(opts);
    const now = this.clock();
    this.byMac.set(mac, new FdbEntry(mac, ip, vni, port, true, now, now));
  }

  private entryOptions(opts: FdbEntryOptions): { vni: number; port: number } {
    return {
      vni: opts.vni === undefined ? this.vni : toUint(opts.vni, 0, 0xffffff, "VNI"),
      port: opts.port === undefined ? this.dstPort : toUint(opts.port, 1, 0xffff, "port"),
    };
  }

  private appendFlood(ip: number): void {
    this.flood.push(ip);
    this.floodUpdated = this.clock();
  }
}
