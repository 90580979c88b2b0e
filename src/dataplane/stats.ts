// Counters live in two flat Float64Arrays (traffic, drops by reason) so the hot loop
// increments an indexed slot: no Map lookup, no allocation, no string per packet.
// Names are API: `vxtun stats --json` and the Prometheus exporter print them as is.
import { DROP_COUNT, dropName } from "../encap/drop.js";

export const COUNTER_NAMES = [
  "tun_rx_packets",
  "tun_rx_bytes",
  "tun_rx_batches",
  "tun_tx_packets",
  "tun_tx_bytes",
  "underlay_rx_packets",
  "underlay_rx_bytes",
  "underlay_rx_batches",
  "underlay_tx_packets",
  "underlay_tx_bytes",
  "underlay_tx_batches",
  "encap_packets",
  "decap_packets",
  "flood_copies",
  "arp_proxied",
  "ndp_proxied",
  "icmp_frag_needed_sent",
  "fragmented_inner",
  "fragmented_outer",
  "pmtu_updates",
  "icmp_time_exceeded_sent",
  "fdb_learned",
  "send_eagain",
  "send_enobufs",
  "send_econnrefused",
  "send_emsgsize",
  "tun_write_errors",
  // Offload fast path (io.offload): TSO super-packets read from the TUN and the segments
  // cut from them, UDP_SEGMENT messages sent, UDP_GRO datagrams received and the
  // segments in them, TUN writes that merged several segments and how many, and
  // segments refused for merging because their inner TCP checksum was wrong.
  "tso_superpackets",
  "tso_segments",
  "gso_sends",
  "gro_datagrams",
  "gro_segments",
  "coalesced_writes",
  "coalesced_segments",
  // The same for UDP: datagrams of a flow merged into one UDP_L4 GSO write (USO).
  "coalesced_udp_writes",
  "coalesced_udp_datagrams",
  "rx_inner_csum_bad",
  // UDP super-packets (USO: an application sent with UDP_SEGMENT) and their datagrams.
  "uso_superpackets",
  "uso_segments",
  // IPv6 packets too big for the tunnel, answered with an ICMPv6 Packet Too Big.
  "icmp6_too_big_sent",
] as const;

export type CounterName = (typeof COUNTER_NAMES)[number];

/** Bytes of one Stats' counters and drops (see statsBuffer). */
export const STATS_BYTES = (COUNTER_NAMES.length + DROP_COUNT) * 8;

/** A buffer for Stats shared between a queue worker and the main thread. */
export function statsBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(STATS_BYTES);
}

/** Counter indices by name, resolved once at module load. */
export const C = Object.freeze(
  Object.fromEntries(COUNTER_NAMES.map((n, i) => [n, i])) as Record<CounterName, number>,
);

export class Stats {
  readonly counters: Float64Array;
  readonly drops: Float64Array;
  readonly startedAt = Date.now();

  /**
   * `shared`: the counters live in this buffer (statsBuffer()), which a queue worker
   * increments and the main thread reads for `vxtun stats`. Plain stores from one
   * writer; a reader may see a value one batch old, never a torn one (8-byte aligned).
   */
  constructor(shared?: SharedArrayBuffer) {
    const buf = shared ?? new ArrayBuffer(STATS_BYTES);
    this.counters = new Float64Array(buf, 0, COUNTER_NAMES.length);
    this.drops = new Float64Array(buf, COUNTER_NAMES.length * 8, DROP_COUNT);
  }

  /** Add another queue's counters into a snapshot (for the process-wide view). */
  static addInto(
    snap: { counters: Record<string, number>; drops: Record<string, number> },
    other: Stats,
  ): void {
    COUNTER_NAMES.forEach((n, i) => {
      snap.counters[n] += other.counters[i];
    });
    for (let i = 1; i < DROP_COUNT; i++) snap.drops[dropName[i]] += other.drops[i];
  }

  /** A plain object for JSON output (not for the hot path). */
  snapshot(): { counters: Record<string, number>; drops: Record<string, number> } {
    const counters: Record<string, number> = {};
    COUNTER_NAMES.forEach((n, i) => {
      counters[n] = this.counters[i];
    });
    const drops: Record<string, number> = {};
    for (let i = 1; i < DROP_COUNT; i++) drops[dropName[i]] = this.drops[i];
    return { counters, drops };
  }

  totalDrops(): number {
    let sum = 0;
    for (let i = 1; i < DROP_COUNT; i++) sum += this.drops[i];
    return sum;
  }
}

/** `vxtun stats` text: traffic counters, then only the drop reasons that occurred. */
export function formatStats(snap: {
  version?: string;
  uptimeSeconds?: number;
  counters: Record<string, number>;
  drops: Record<string, number>;
  /** The offload fast path as probed and chosen at start (see fastpath.ts). */
  offload?: {
    state: string;
    tunOffloads: string[];
    udpSegment: boolean;
    udpGro: boolean;
    sourcePorts: number[];
    csumLoop?: string;
  };
  /** Forwarding queues and the packets each one has taken in (device + underlay). */
  queues?: { count: number; why: string; rx: number[] };
}): string {
  const lines: string[] = [];
  if (snap.version) lines.push(`vxtun ${snap.version}, up ${snap.uptimeSeconds ?? 0} s`);
  const o = snap.offload;
  if (o) {
    const yes = (b: boolean) => (b ? "yes" : "no");
    lines.push(
      o.state === "on"
        ? `offload: on (tun ${o.tunOffloads.join("+")}, udp_segment ${yes(o.udpSegment)}, udp_gro ${yes(o.udpGro)}, ${o.sourcePorts.length} source ports, checksum ${o.csumLoop ?? "?"})`
        : `offload: ${o.state}`,
    );
  }
  const q = snap.queues;
  if (q) lines.push(`queues: ${q.count} (${q.why}); packets in per queue: ${q.rx.join(" / ")}`);
  const width = Math.max(...Object.keys(snap.counters).map((k) => k.length), 20);
  for (const [k, v] of Object.entries(snap.counters)) lines.push(`${k.padEnd(width)} ${v}`);
  const dropped = Object.entries(snap.drops).filter(([, v]) => v > 0);
  lines.push("drops:");
  if (dropped.length === 0) lines.push("  (none)");
  for (const [k, v] of dropped) lines.push(`  ${k.padEnd(width - 2)} ${v}`);
  return lines.join("\n");
}
