// What the forwarding stages share: the options, the slab, the tables, the current
// packet's resolved destination, one reusable result object per decoder, and the
// slots a batch borrows. One FwdState per Forwarder; every stage (send.ts, receive.ts,
// bridge.ts, …) holds the same instance, so each field access sees one hidden class.
import { type ArpInfo, newArpInfo } from "../encap/arp.js";
import { Drop } from "../encap/drop.js";
import { type EthernetInfo, newEthernetInfo } from "../encap/ethernet.js";
import { type DfPolicy, type IpipInfo, newIpipInfo } from "../encap/ipip.js";
import { type Ipv4Info, newIpv4Info } from "../encap/ipv4.js";
import { type Ipv6Info, newIpv6Info } from "../encap/ipv6.js";
import { newVxlanInfo, VXLAN_L3_HEADROOM, type VxlanInfo } from "../encap/vxlan.js";
import {
  type Fdb,
  Neigh6Table,
  type NeighTable,
  type Route6,
  type RouteTable,
  RouteTable6,
} from "../fdb/index.js";
import type { Batch } from "../io/batch.js";
import type { GsoBatch } from "../io/gso-batch.js";
import type { Slab } from "../io/slab.js";
import type { UdpSenderPool } from "./offload/fastpath.js";
import type { Summer } from "./offload/segment.js";
import type { Stats } from "./stats.js";

export const MODE_VXLAN = 0;
export const MODE_VXLAN_L2 = 1;
export const MODE_IPIP = 2;

/** "inherit" for TTL/TOS. */
export const INHERIT = -1;

export const FRAG_INNER = 0;
export const FRAG_OUTER = 1;

/** Where batches go out: the device (src/tun) and the underlay sockets (src/underlay). */
export interface BatchSink {
  /** Consume packets [from, from+count); returns how many were consumed. */
  sendBatch(b: Batch, from: number, count: number): number;
}

export interface ForwarderOptions {
  mode: number;
  vni: number;
  port: number;
  sportLo: number;
  sportHi: number;
  localIp: number;
  vtepMac: number;
  ttl: number;
  tos: number;
  df: DfPolicy;
  proxyArp: boolean;
  learning: boolean;
  /** Accept underlay packets only from these sources (empty: any). */
  allowPeers: readonly number[];
  batch: number;
  /** Largest inner packet a route carries unless PMTU discovery lowered it. */
  tunnelMtu: number;
  /** Underlay MTU: the largest outer packet (for outer fragmentation). */
  underlayMtu: number;
  /** DF clear and too big: fragment the inner packet (kernel-like) or the outer one. */
  fragment: number;
}

/** Where the IPIP fast path sends gathered segments (RawSocket.sendGather). */
export interface GatherSink {
  sendGather(batch: GsoBatch, from: number, count: number): number;
}

/** The offload fast path's parts (every mode; ipip has no pool but a raw sink); see fastpath.ts. */
export interface FastPathIo {
  /** VXLAN: UDP sockets on the flow source ports, for super-packets' segments. */
  pool: UdpSenderPool | undefined;
  /** IPIP: the header-including raw socket, for super-packets' segments. */
  raw?: GatherSink;
  /** UDP_SEGMENT works: a super-packet's segments go out as one message. */
  udpSegment: boolean;
  /** The device took USO4|USO6: received UDP datagrams of a flow merge into one write. */
  usoWrites: boolean;
  /**
   * The device took TSO6: received IPv6 TCP segments of a flow merge into one TCPv6
   * write (a TAP merges IPv6 in any case: its bridge carries it).
   */
  tso6Writes: boolean;
  /** UDP_GRO segment sizes parallel to the underlay reading batch, when GRO is on. */
  rxGso: Uint16Array | undefined;
  /** The addon's checksum over the slab. */
  summer: Summer;
}

/**
 * vxlan-l2 with several queues: called when learning created or moved an entry (rare;
 * refreshes are not reported), instead of counting fdb_learned here: see queues.ts.
 */
export type LearnHook = (mac: number, remote: number, created: boolean) => void;

/** A destination without a header template (unresolved, or not vxlan mode). */
export const NO_TEMPLATE = new Uint8Array(VXLAN_L3_HEADROOM);

export class FwdState {
  readonly u8: Uint8Array;
  /** vxlan-l2 (a TAP, Ethernet frames) and ipip: the two modes that differ from vxlan. */
  readonly l2: boolean;
  readonly ipip: boolean;
  /** The device reads and writes a virtio_net_hdr before each packet. */
  readonly vnet: boolean;
  /** Our underlay address as int32: never boxed when passed on. */
  readonly localIp32: number;
  // The current packet's resolved destination (fields, not an object: no allocation).
  curRemote = 0;
  curPort = 0;
  /** VXLAN header + inner Ethernet for the current destination (vxlan, vxlan-l2 TSO). */
  curTpl: Uint8Array = NO_TEMPLATE;
  curMtu = 0;
  /** Where an ICMP error about the current packet comes from (next hop). */
  curFrom = 0;
  /** The current IPv6 packet's route (its gateway is where a Packet Too Big comes from). */
  curRoute6: Route6 | undefined = undefined;
  onLearn: LearnHook | undefined = undefined;
  // One reusable result object per decoder: no per-packet objects.
  readonly ip: Ipv4Info = newIpv4Info();
  readonly ip6: Ipv6Info = newIpv6Info();
  readonly eth: EthernetInfo = newEthernetInfo();
  readonly arp: ArpInfo = newArpInfo();
  readonly vx: VxlanInfo = newVxlanInfo();
  readonly ipipInfo: IpipInfo = newIpipInfo();
  /** Header arena of this batch's super-packets (headerSpace): its slot, or -1. */
  hdrSlot = -1;
  private hdrAt = 0;
  private hdrEnd = 0;
  /** Slots taken from the pool (flood copies, fragments, ICMP errors), freed after the batch. */
  private readonly extra: Uint32Array;
  private extraCount = 0;
  private ipId = 1;

  constructor(
    readonly o: ForwarderOptions,
    readonly slab: Slab,
    public fdb: Fdb,
    public neigh: NeighTable,
    public routes: RouteTable,
    readonly stats: Stats,
    readonly fast: FastPathIo | undefined,
    /** The IPv6 tables of the L3 modes (empty until the dataplane sets its own). */
    public routes6: RouteTable6 = new RouteTable6(),
    public neigh6: Neigh6Table = new Neigh6Table(),
  ) {
    this.u8 = slab.u8;
    this.l2 = o.mode === MODE_VXLAN_L2;
    this.ipip = o.mode === MODE_IPIP;
    this.vnet = fast !== undefined;
    this.localIp32 = o.localIp | 0;
    this.extra = new Uint32Array(slab.count);
  }

  drop(code: number): void {
    this.stats.drops[code]++;
  }

  /** A slot for a packet we create (fragment, copy, ICMP error), freed after the batch. */
  takeSlot(): number {
    const slot = this.slab.alloc();
    if (slot < 0) {
      this.drop(Drop.PoolExhausted);
      return -1;
    }
    this.extra[this.extraCount++] = slot;
    return slot;
  }

  /** Slots taken during a batch (copies, fragments, header arena), once it is written. */
  freeExtra(): void {
    for (let i = 0; i < this.extraCount; i++) this.slab.free(this.extra[i]);
    this.extraCount = 0;
    this.hdrSlot = -1;
  }

  /**
   * `bytes` of scratch for segment header blocks, packed into slots taken for this
   * batch (freed with the other extra slots after it): -1 when the pool is empty.
   */
  headerSpace(bytes: number): number {
    if (this.hdrSlot < 0 || this.hdrAt + bytes > this.hdrEnd) {
      const slot = this.takeSlot();
      if (slot < 0) return -1;
      this.hdrSlot = slot;
      this.hdrAt = this.slab.slotStart(slot);
      this.hdrEnd = this.hdrAt + this.slab.slotSize;
    }
    const at = this.hdrAt;
    this.hdrAt += bytes;
    return at;
  }

  nextId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }
}
