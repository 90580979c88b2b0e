// Neighbour (ARP) cache, like `ip neigh` on a vxlan/flannel device: IPv4 -> MAC with NUD
// states. flanneld-style control programs PERMANENT entries (remote VTEP IP -> VTEP MAC);
// the dataplane uses them for the gateway's inner destination MAC and for proxy ARP, and
// may add dynamic entries from ARP it snoops (confirm) and from failed lookups (miss).
//
// States kept (kernel NUD bit values, so numbers read the same as in netlink):
//   PERMANENT  programmed; never changes on its own
//   REACHABLE  confirmed within reachableMs
//   STALE      usable, but unconfirmed for longer than reachableMs
//   INCOMPLETE a resolution is in flight (miss() returned true); no MAC yet
//   FAILED     no answer within incompleteMs; the next miss() starts over
// No DELAY/PROBE: vxtun sends no unicast re-probes. Instead a STALE entry is removed
// gcStaleMs after it went stale, used or not, so the next miss() resolves it afresh:
// staleness stays bounded by reachableMs + gcStaleMs.
// Transitions by time happen lazily on lookup and in the periodic expire(now) sweep.

import { formatIpv4, formatMac } from "../encap/addr.js";
import { ageSeconds, type Clock, monotonicClock } from "./clock.js";
import { TableError } from "./errors.js";
import { type Ipv4Input, type MacInput, toIpv4, toMac, toUint } from "./input.js";

export const Nud = {
  INCOMPLETE: 0x01,
  REACHABLE: 0x02,
  STALE: 0x04,
  FAILED: 0x20,
  PERMANENT: 0x80,
} as const;
export type NudState = (typeof Nud)[keyof typeof Nud];

const NUD_NAMES: Record<NudState, string> = {
  [Nud.INCOMPLETE]: "INCOMPLETE",
  [Nud.REACHABLE]: "REACHABLE",
  [Nud.STALE]: "STALE",
  [Nud.FAILED]: "FAILED",
  [Nud.PERMANENT]: "PERMANENT",
};

/** States whose MAC may be used to send. */
const NUD_VALID = Nud.PERMANENT | Nud.REACHABLE | Nud.STALE;

/** One neighbour. Treat as read-only outside this module. */
export class NeighEntry {
  constructor(
    /** uint32, host order. */
    readonly ip: number,
    /** 48-bit MAC, or -1 while INCOMPLETE/FAILED without one. */
    public mac: number,
    public state: NudState,
    /** Last state or MAC change. */
    public updated: number,
    /** Last reachability confirmation. */
    public confirmed: number,
    /** Last lookup. */
    public used: number,
  ) {}
}

/** What confirm() did. */
export const Confirm = {
  Refreshed: 0,
  Created: 1,
  /** The neighbour answered with another MAC: updated (counted in changed). */
  Changed: 2,
  /** PERMANENT entries are not touched by what the wire says. */
  Ignored: 3,
  /** Dynamic entries at maxEntries (counted in refused_full). */
  RefusedFull: 4,
  /** An INCOMPLETE or FAILED entry got its MAC. */
  Resolved: 5,
} as const;
export type ConfirmResult = (typeof Confirm)[keyof typeof Confirm];

export interface NeighOptions {
  clock?: Clock;
  dev?: string;
  /** Kernel base_reachable_time (30 s); fixed, not randomised, so tests stay exact. */
  reachableMs?: number;
  /** Kernel gc_stale_time (60 s). */
  gcStaleMs?: number;
  /** Kernel retrans_time x mcast_solicit (1 s x 3). */
  incompleteMs?: number;
  /** Cap on dynamic entries (kernel gc_thresh3, 1024); PERMANENT entries do not count. */
  maxEntries?: number;
}

export interface NeighShowOptions {
  now?: number;
  /** Print "dev <name>", as `ip neigh show` without a dev filter does. */
  dev?: boolean;
  /** Print "used U/C/Up" ages in seconds, as `ip -s neigh show`. */
  stats?: boolean;
}

/** One object of `ip -j [-s] neigh show`. */
export interface NeighJson {
  dst: string;
  dev: string;
  lladdr?: string;
  used?: number;
  confirmed?: number;
  updated?: number;
  state: string[];
}

export class NeighTable {
  /**
   * Bumped by every change that can alter what a lookup returns, so a reader may cache
   * lookups (the forwarder's destination cache) and drop them when this moves.
   */
  version = 0;
  readonly counters = { confirmed: 0, changed: 0, stale: 0, failed: 0, gc: 0, refused_full: 0 };
  readonly dev: string;
  readonly reachableMs: number;
  readonly gcStaleMs: number;
  readonly incompleteMs: number;
  readonly maxEntries: number;
  private readonly clock: Clock;
  /** Keyed by ip | 0: int32 keys stay small integers, so Map.get does not allocate. */
  private readonly byIp = new Map<number, NeighEntry>();
  private dynamic = 0;

  constructor(opts: NeighOptions = {}) {
    this.clock = opts.clock ?? monotonicClock;
    this.dev = opts.dev ?? "vxtun0";
    this.reachableMs = toUint(opts.reachableMs ?? 30_000, 1, 2 ** 40, "reachableMs");
    this.gcStaleMs = toUint(opts.gcStaleMs ?? 60_000, 0, 2 ** 40, "gcStaleMs");
    this.incompleteMs = toUint(opts.incompleteMs ?? 3_000, 1, 2 ** 40, "incompleteMs");
    this.maxEntries = toUint(opts.maxEntries ?? 1024, 0, 2 ** 31, "maxEntries");
  }

  get size(): number {
    return this.byIp.size;
  }

  /** The entry in its current state, marked used; undefined if unknown. */
  lookup(ip: number, now: number = this.clock()): Readonly<NeighEntry> | undefined {
    const e = this.byIp.get(ip | 0);
    if (e === undefined) return undefined;
    this.advance(e, now);
    e.used = now;
    return e;
  }

  /** MAC to send to, or -1 when there is none usable (unknown, INCOMPLETE, FAILED). */
  resolve(ip: number, now: number = this.clock()): number {
    const e = this.lookup(ip, now);
    return e !== undefined && (e.state & NUD_VALID) !== 0 ? e.mac : -1;
  }

  /**
   * The neighbour is at `mac` (an ARP reply or request from it): REACHABLE. Creates the
   * entry on first sight; never overrides PERMANENT.
   */
  confirm(ip: number, mac: number, now: number = this.clock()): ConfirmResult {
    const e = this.byIp.get(ip | 0);
    if (e === undefined) {
      if (this.dynamic >= this.maxEntries && this.maxEntries !== 0) {
        this.counters.refused_full++;
        return Confirm.RefusedFull;
      }
      this.byIp.set(ip | 0, new NeighEntry(ip >>> 0, mac, Nud.REACHABLE, now, now, now));
      this.dynamic++;
      this.counters.confirmed++;
      this.version++;
      return Confirm.Created;
    }
    if (e.state === Nud.PERMANENT) return Confirm.Ignored;
    this.counters.confirmed++;
    e.confirmed = now;
    if (e.state !== Nud.REACHABLE) {
      e.state = Nud.REACHABLE;
      e.updated = now;
    }
    if (e.mac === mac) return Confirm.Refreshed;
    const resolved = e.mac < 0;
    this.version++;
    e.mac = mac;
    e.updated = now;
    if (resolved) return Confirm.Resolved;
    this.counters.changed++;
    return Confirm.Changed;
  }

  /**
   * A lookup found no usable MAC. Returns true when the caller should send one resolution
   * (ARP request or miss notification): the entry is new or had FAILED. While a
   * resolution is INCOMPLETE it returns false, so a burst of packets asks once.
   */
  miss(ip: number, now: number = this.clock()): boolean {
    this.version++;
    const e = this.byIp.get(ip | 0);
    if (e === undefined) {
      if (this.dynamic >= this.maxEntries && this.maxEntries !== 0) {
        this.counters.refused_full++;
        return false;
      }
      this.byIp.set(ip | 0, new NeighEntry(ip >>> 0, -1, Nud.INCOMPLETE, now, 0, now));
      this.dynamic++;
      return true;
    }
    this.advance(e, now);
    if (e.state !== Nud.FAILED) return false;
    e.state = Nud.INCOMPLETE;
    e.updated = now;
    return true;
  }

  /** Apply timeouts to every entry and drop old STALE and FAILED ones. Returns removals. */
  expire(now: number = this.clock()): number {
    let n = 0;
    for (const [key, e] of this.byIp) {
      this.advance(e, now);
      const gone =
        e.state === Nud.FAILED ||
        (e.state === Nud.STALE && now - e.confirmed >= this.reachableMs + this.gcStaleMs);
      if (gone) {
        this.byIp.delete(key);
        this.dynamic--;
        n++;
      }
    }
    this.counters.gc += n;
    if (n > 0) this.version++;
    return n;
  }

  /** `ip neigh add IP lladdr MAC nud permanent`: fails if IP has any entry. */
  add(ip: Ipv4Input, mac: MacInput): void {
    this.version++;
    const a = toIpv4(ip);
    const m = toMac(mac, "lladdr");
    const e = this.byIp.get(a | 0);
    if (e !== undefined) {
      throw new TableError(
        "EEXIST",
        `neighbour ${formatIpv4(a)} already exists (${NUD_NAMES[e.state]}): use replace to change it`,
      );
    }
    this.setPermanent(a, m);
  }

  /** `ip neigh replace IP lladdr MAC nud permanent` (what flanneld runs): create or overwrite. */
  replace(ip: Ipv4Input, mac: MacInput): void {
    this.version++;
    this.setPermanent(toIpv4(ip), toMac(mac, "lladdr"));
  }

  /** `ip neigh del IP`: any state. */
  del(ip: Ipv4Input): void {
    this.version++;
    const a = toIpv4(ip);
    const e = this.byIp.get(a | 0);
    if (e === undefined) {
      throw new TableError(
        "ENOENT",
        `no neighbour ${formatIpv4(a)} to delete: see neigh show for the table`,
      );
    }
    this.byIp.delete(a | 0);
    if (e.state !== Nud.PERMANENT) this.dynamic--;
  }

  /** Entries sorted by IP, with timeouts applied as of `now`. */
  entries(now: number = this.clock()): NeighEntry[] {
    const out = [...this.byIp.values()];
    for (const e of out) this.advance(e, now);
    return out.sort((a, b) => a.ip - b.ip);
  }

  /** `ip neigh show dev <dev>` text. */
  show(opts: NeighShowOptions = {}): string {
    const now = opts.now ?? this.clock();
    return this.entries(now)
      .map((e) => {
        let s = formatIpv4(e.ip);
        if (opts.dev) s += ` dev ${this.dev}`;
        if (e.mac >= 0) s += ` lladdr ${formatMac(e.mac)}`;
        if (opts.stats) {
          s += ` used ${ageSeconds(now, e.used)}/${ageSeconds(now, e.confirmed)}/${ageSeconds(now, e.updated)}`;
        }
        return `${s} ${NUD_NAMES[e.state]}\n`;
      })
      .join("");
  }

  /** `ip -j neigh show` objects; with stats, the ages of `ip -j -s neigh show`. */
  showJson(opts: { now?: number; stats?: boolean } = {}): NeighJson[] {
    const now = opts.now ?? this.clock();
    return this.entries(now).map((e) => ({
      dst: formatIpv4(e.ip),
      dev: this.dev,
      ...(e.mac >= 0 ? { lladdr: formatMac(e.mac) } : {}),
      ...(opts.stats
        ? {
            used: ageSeconds(now, e.used),
            confirmed: ageSeconds(now, e.confirmed),
            updated: ageSeconds(now, e.updated),
          }
        : {}),
      state: [NUD_NAMES[e.state]],
    }));
  }

  private setPermanent(ip: number, mac: number): void {
    const now = this.clock();
    const e = this.byIp.get(ip | 0);
    if (e === undefined) {
      this.byIp.set(ip | 0, new NeighEntry(ip, mac, Nud.PERMANENT, now, now, now));
      return;
    }
    if (e.state !== Nud.PERMANENT) this.dynamic--;
    e.mac = mac;
    e.state = Nud.PERMANENT;
    e.updated = now;
    e.confirmed = now;
  }

  /** Time-driven transitions; timestamps are set to when they happened, not to now. */
  private advance(e: NeighEntry, now: number): void {
    if (e.state === Nud.REACHABLE) {
      if (now - e.confirmed >= this.reachableMs) {
        e.state = Nud.STALE;
        e.updated = e.confirmed + this.reachableMs;
        this.counters.stale++;
      }
    } else if (e.state === Nud.INCOMPLETE) {
      if (now - e.updated >= this.incompleteMs) {
        e.state = Nud.FAILED;
        e.updated += this.incompleteMs;
        this.counters.failed++;
      }
    }
  }
}
