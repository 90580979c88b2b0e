// The hot loop: one call per batch in each direction, no allocation, no closure and no
// promise per packet. Packets never move: encapsulation writes headers into the slot's
// headroom (off -= n), decapsulation advances off; the same slot goes to the kernel.
//
//   device batch (TUN: IPv4 packets, TAP: Ethernet frames)
//     -> classify -> route/neighbour/FDB lookup -> VXLAN or IPIP header in front
//     -> outer IPv4 (+UDP) in front -> one sendmmsg on a header-including raw socket
//   underlay batch (UDP payloads for VXLAN, whole IPv4 packets for IPIP)
//     -> validate and decapsulate -> (learn) -> one write per packet to the device
//
// The outer IPv4/UDP header is ours (raw socket, IP_HDRINCL) rather than the kernel's
// (UDP socket) so that the policy decisions stay in TypeScript: a per-flow UDP source
// port (RFC 7348 §5, for underlay ECMP), DF, TTL and TOS per packet.
//
// Offload fast path (`io.offload: auto`, every mode, see fastpath.ts): the TUN/TAP
// carries a virtio_net_hdr in front of every packet and hands us TCP super-packets (TSO).
// Those are cut into MSS-sized segments (segment.ts), each encapsulated, and sent as
// one UDP_SEGMENT message on a pool socket bound to the flow's source port; everything
// else (small packets, ICMP, fragments) still takes the raw path above, so DF/PMTU
// handling is unchanged. Receive: UDP_GRO datagrams are split at their segment size,
// decapsulated, and in-order TCP segments are merged again (coalesce.ts) into one GSO
// write to the TUN.
import { isMulticastMac, readMac } from "../encap/addr.js";
import {
  ARP_OP_REQUEST,
  type ArpInfo,
  arpParse,
  arpRequestToReply,
  newArpInfo,
} from "../encap/arp.js";
import { read16 } from "../encap/bytes.js";
import { Drop } from "../encap/drop.js";
import {
  ETH_HDR_LEN,
  ETH_SRC,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  type EthernetInfo,
  ethernetParse,
  ethernetReplyHeader,
  newEthernetInfo,
} from "../encap/ethernet.js";
import { ipv4FragmentCount, ipv4WriteFragment } from "../encap/fragment.js";
import { type IcmpErrorParams, icmpWriteError, newIcmpErrorParams } from "../encap/icmp.js";
import {
  DfPolicy,
  type IpipInfo,
  type IpipParams,
  ipipDecap,
  ipipEncap,
  newIpipInfo,
  newIpipParams,
} from "../encap/ipip.js";
import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_DF,
  IPV4_FLAGS_FRAG,
  IPV4_HDR_LEN,
  IPV4_TOS,
  IPV4_TTL,
  type Ipv4Fields,
  type Ipv4Info,
  ipv4Parse,
  ipv4Write,
  newIpv4Fields,
  newIpv4Info,
} from "../encap/ipv4.js";
import {
  IPV6_HDR_LEN,
  IPV6_HOP_LIMIT,
  IPV6_PAYLOAD_LEN,
  ipv6TrafficClass,
  ipv6UpperOffset,
} from "../encap/ipv6.js";
import { UDP_HDR_LEN, udpWrite } from "../encap/udp.js";
import {
  newVxlanInfo,
  VXLAN_HDR_LEN,
  VXLAN_L3_HEADROOM,
  type VxlanInfo,
  vxlanDecap,
  vxlanEncapL2,
  vxlanEncapL3Template,
  vxlanSourcePort,
  vxlanWrite,
  vxlanWriteL3Template,
} from "../encap/vxlan.js";
import { type Fdb, Learn, type NeighTable, type Route, type RouteTable } from "../fdb/index.js";
import { Batch } from "../io/batch.js";
import { GsoBatch, UDP_MAX_PAYLOAD, UDP_MAX_SEGMENTS } from "../io/gso-batch.js";
import type { Slab } from "../io/slab.js";
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_LEN,
  vnetCsumOffset,
  vnetCsumStart,
  vnetGsoSize,
  vnetWritePlain,
} from "../tun/vnet.js";
import { Coalescer, MAX_GROUP_SEGMENTS, type VnetSink } from "./offload/coalesce.js";
import type { UdpSenderPool } from "./offload/fastpath.js";
import {
  completeChecksum,
  SUM_MANY,
  type Summer,
  tsoHeaderLen,
  tsoPayloadLen,
  tsoPayloadOff,
  tsoSegment,
  usoHeaderLen,
  usoSegment,
} from "./offload/segment.js";
import { C, type Stats } from "./stats.js";

export const MODE_VXLAN = 0;
export const MODE_VXLAN_L2 = 1;
export const MODE_IPIP = 2;

/** "inherit" for TTL/TOS. */
export const INHERIT = -1;

/** Where batches go out; implemented by the device and sockets of src/tun. */
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

export const FRAG_INNER = 0;
export const FRAG_OUTER = 1;

/** The offload fast path's parts (every mode; ipip has no pool but a raw sink); see fastpath.ts. */
/** Where the IPIP fast path sends gathered segments (RawSocket.sendGather). */
export interface GatherSink {
  sendGather(batch: GsoBatch, from: number, count: number): number;
}

export interface FastPathIo {
  /** VXLAN: UDP sockets on the flow source ports, for super-packets' segments. */
  pool: UdpSenderPool | undefined;
  /** IPIP: the header-including raw socket, for super-packets' segments. */
  raw?: GatherSink;
  /** UDP_SEGMENT works: a super-packet's segments go out as one message. */
  udpSegment: boolean;
  /** The device took USO4|USO6: received UDP datagrams of a flow merge into one write. */
  usoWrites: boolean;
  /** UDP_GRO segment sizes parallel to the underlay reading batch, when GRO is on. */
  rxGso: Uint16Array | undefined;
  /** The addon's checksum over the slab. */
  summer: Summer;
}

/** A resolved vxlan-mode destination (see Forwarder.resolveDest). */
class Dest {
  constructor(
    /** Drop.None, or why packets to it are dropped (no neighbour, no FDB entry). */
    readonly code: number,
    /** Remote node, int32. */
    readonly remote: number,
    readonly vni: number,
    readonly port: number,
    /** VXLAN header + inner Ethernet header (dst = its VTEP MAC, src = ours). */
    readonly tpl: Uint8Array,
  ) {}
}
const NO_TEMPLATE = new Uint8Array(VXLAN_L3_HEADROOM);

/** Inner Ethernet + VXLAN in front of each segment. */
const SEG_PREFIX = VXLAN_L3_HEADROOM;
/** Where a received VXLAN segment's inner TCP header usually starts (no VLAN, no IP options). */
const RX_TCP_AT = VXLAN_L3_HEADROOM + IPV4_HDR_LEN;
/** The same for an IPIP packet as the raw socket hands it over: outer + inner IPv4. */
const IPIP_TCP_AT = 2 * IPV4_HDR_LEN;

export class Forwarder implements VnetSink {
  private readonly u8: Uint8Array;
  /** The device reads and writes a virtio_net_hdr before each packet. */
  private readonly vnet: boolean;
  private readonly pool: UdpSenderPool | undefined;
  /** IPIP fast path: segments (header block + payload range) for the raw socket. */
  private readonly ipipOut: GsoBatch | undefined;
  private readonly poolPorts: Uint16Array | undefined;
  private readonly coal: Coalescer | undefined;
  /** Underlay sends (header-including raw socket) and device writes. */
  private readonly toUnderlay: Batch;
  private readonly toDevice: Batch;
  /** Slots taken from the pool (flood copies, fragments, ICMP errors), freed after the batch. */
  private readonly extra: Uint32Array;
  private extraCount = 0;
  private readonly allow: Set<number> | undefined;
  private ipId = 1;
  // The current packet's resolved destination (fields, not an object: no allocation).
  private curRemote = 0;
  private curPort = 0;
  /** VXLAN header + inner Ethernet for the current destination (vxlan mode). */
  private curTpl: Uint8Array = NO_TEMPLATE;
  private curMtu = 0;
  /**
   * vxlan-l2 with several queues: called when learning created or moved an entry (rare;
   * refreshes are not reported), instead of counting fdb_learned here: see queues.ts.
   */
  onLearn: ((mac: number, remote: number, created: boolean) => void) | undefined = undefined;
  /** Where an ICMP error about the current packet comes from (next hop). */
  private curFrom = 0;
  /** Per-datagram TCP sums of the batch being handled (-1: none). */
  private readonly batchPre = new Int32Array(SUM_MANY);
  /**
   * vxlan mode: route -> neighbour -> FDB resolved once per route and kept while no
   * table changes (their version counters), so the per-packet path neither looks up
   * 48-bit MACs nor passes them around: V8 boxes such numbers (a heap allocation) at
   * every call that is not inlined (bench/fastpath-alloc.ts).
   */
  private readonly dests = new Map<Route, Dest>();
  private destVersion = -1;
  /** Our underlay address as int32: never boxed when passed on. */
  private readonly localIp32: number;
  /** Header arena of this batch's super-packets (headerSpace). */
  private hdrSlot = -1;
  private hdrAt = 0;
  private hdrEnd = 0;
  /** The underlay batch being handled (fromUnderlay). */
  private rxBatch: Batch | undefined;
  // One reusable result object per decoder, per forwarder: no per-packet objects.
  private readonly ip: Ipv4Info = newIpv4Info();
  private readonly eth: EthernetInfo = newEthernetInfo();
  private readonly arp: ArpInfo = newArpInfo();
  private readonly vx: VxlanInfo = newVxlanInfo();
  /** vxlan-l2 super-frames: VXLAN header + the frame's Ethernet header. */
  private readonly l2Tpl = new Uint8Array(VXLAN_L3_HEADROOM);
  /** A vnet header range + a frame (devPush on a TAP). */
  private readonly frameRanges = { off: new Uint32Array(2), len: new Uint32Array(2) };
  private readonly ipip: IpipInfo = newIpipInfo();
  // The header writers' parameters: filled per packet, never reallocated.
  private readonly ipipHdr: IpipParams = newIpipParams();
  private readonly outerIp: Ipv4Fields = { ...newIpv4Fields(), protocol: IPPROTO_UDP };
  private readonly icmpErr: IcmpErrorParams = newIcmpErrorParams();

  constructor(
    readonly o: ForwarderOptions,
    readonly slab: Slab,
    public fdb: Fdb,
    public neigh: NeighTable,
    public routes: RouteTable,
    readonly stats: Stats,
    private readonly underlay: BatchSink,
    private readonly device: BatchSink,
    private readonly fast?: FastPathIo,
  ) {
    this.u8 = slab.u8;
    this.localIp32 = o.localIp | 0;
    this.ipipHdr.src = this.localIp32;
    this.ipipHdr.ttl = o.ttl;
    this.ipipHdr.tos = o.tos;
    this.ipipHdr.df = o.df;
    this.outerIp.src = this.localIp32;
    this.vnet = fast !== undefined;
    this.pool = fast?.pool;
    this.poolPorts = fast?.pool?.ports;
    this.ipipOut =
      fast?.raw !== undefined ? new GsoBatch(o.batch * 4).withGather(o.batch * 8) : undefined;
    this.coal = fast
      ? new Coalescer(
          slab.u8,
          fast.summer,
          this,
          o.mode === MODE_VXLAN_L2 ? ETH_HDR_LEN : 0,
          fast.usoWrites,
        )
      : undefined;
    // Room for one flood copy per remote per packet without reallocating.
    this.toUnderlay = new Batch(Math.min(1024, o.batch * 4));
    this.toDevice = new Batch(o.batch);
    // Coalesced super-packets are written from their segments' ranges (coalesce.ts).
    if (fast !== undefined) this.toDevice.withGather(o.batch * (MAX_GROUP_SEGMENTS + 1));
    this.extra = new Uint32Array(slab.count);
    this.allow = o.allowPeers.length ? new Set(o.allowPeers) : undefined;
  }

  /** A queue worker's new copy of the tables (tables.ts); between batches only. */
  setTables(fdb: Fdb, neigh: NeighTable, routes: RouteTable): void {
    this.fdb = fdb;
    this.neigh = neigh;
    this.routes = routes;
    this.dests.clear();
    this.destVersion = -1;
  }

  private drop(code: number): void {
    this.stats.drops[code]++;
  }

  // ---------------------------------------------------------------- device -> underlay

  /** A batch read from the TUN/TAP device. Bound once, handed to the reader. */
  readonly fromDevice = (b: Batch): void => {
    const c = this.stats.counters;
    c[C.tun_rx_batches]++;
    const n = b.count;
    for (let i = 0; i < n; i++) {
      c[C.tun_rx_packets]++;
      c[C.tun_rx_bytes] += b.len[i];
      const code = this.vnet
        ? this.txVnet(b.slot[i], b.off[i], b.len[i])
        : this.o.mode === MODE_VXLAN_L2
          ? this.txFrame(b.slot[i], b.off[i], b.len[i])
          : this.txPacket(b.slot[i], b.off[i], b.len[i]);
      if (code !== Drop.None) this.drop(code);
      if (this.toUnderlay.count + 8 > this.toUnderlay.capacity) this.flushUnderlay();
    }
    this.flushUnderlay();
    if (this.pool !== undefined) this.flushPool();
    if (this.ipipOut !== undefined) this.flushIpip();
    this.flushDevice();
    b.freeSlots(this.slab, 0, n);
    this.freeExtra();
  };

  /** Slots taken during a batch (copies, fragments, header arena), once it is written. */
  private freeExtra(): void {
    for (let i = 0; i < this.extraCount; i++) this.slab.free(this.extra[i]);
    this.extraCount = 0;
    this.hdrSlot = -1;
  }

  /** L3 modes: an IPv4 packet from the TUN. */
  private txPacket(slot: number, off: number, len: number): number {
    const ip = this.ip;
    let code = ipv4Parse(this.u8, off, len, ip);
    if (code !== Drop.None) return code;
    code = this.resolve();
    if (code !== Drop.None) return code;
    const total = ip.totalLen;
    const mtu = this.curMtu;
    if (total <= mtu) return this.encapL3(slot, off, total);
    // Too big for the tunnel path: what the kernel's tunnels do.
    if (ip.df) {
      // From the next hop's address, as a router on the path would: a source that is
      // one of the receiving host's own addresses would be dropped as a martian.
      this.fragNeeded(off, total, mtu, this.curFrom);
      return Drop.TooBig;
    }
    return this.o.fragment === FRAG_INNER
      ? this.fragmentInner(off, total, mtu)
      : this.encapL3(slot, off, total);
  }

  /** Route (and in vxlan mode neighbour + FDB) lookup for this.ip.dst into cur*. */
  private resolve(): number {
    // int32 (| 0): an address above 2^31 passed to a call that is not inlined is boxed.
    const dst = this.ip.dst | 0;
    const route = this.routes.lookup(dst);
    if (route === undefined) return Drop.NoRoute;
    if (this.o.mode === MODE_IPIP) {
      this.curRemote = (route.remote || route.gateway) | 0;
      if (this.curRemote === 0) return Drop.NoRoute;
    } else {
      // All three counters only grow: their sum moves whenever one of them does.
      const v = this.routes.version + this.neigh.version + this.fdb.version;
      if (v !== this.destVersion) {
        this.dests.clear();
        this.destVersion = v;
      }
      let d = this.dests.get(route);
      if (d === undefined) {
        d = this.resolveDest(route, dst);
        this.dests.set(route, d);
      }
      if (d.code !== Drop.None) return d.code;
      this.curRemote = d.remote;
      this.curPort = d.port;
      this.curTpl = d.tpl;
    }
    this.curMtu = route.mtu || this.o.tunnelMtu;
    this.curFrom = (route.gateway || dst) | 0;
    return Drop.None;
  }

  /**
   * flannel's model: route via the peer's VTEP address (onlink), whose permanent
   * neighbour entry gives the VTEP MAC, whose FDB entry gives the node's address.
   * Allocates (the cache entry, its header template): once per route and table change.
   */
  private resolveDest(route: Route, dst: number): Dest {
    const mac = this.neigh.resolve(route.gateway || dst);
    if (mac < 0) return new Dest(Drop.NoNeigh, 0, 0, 0, NO_TEMPLATE);
    const fe = this.fdb.lookup(mac);
    if (fe === undefined) return new Dest(Drop.NoFdb, 0, 0, 0, NO_TEMPLATE);
    const tpl = new Uint8Array(VXLAN_L3_HEADROOM);
    vxlanWriteL3Template(tpl, 0, fe.vni, this.o.vtepMac, mac);
    return new Dest(Drop.None, fe.remote | 0, fe.vni, fe.port, tpl);
  }

  // ---------------------------------------------------------------- fast path, TX

  /** A packet (or frame) from a TUN/TAP with a virtio_net_hdr (fast path). */
  private txVnet(slot: number, off: number, len: number): number {
    const u8 = this.u8;
    const h = off - VNET_LEN;
    const gso = u8[h + 1] & 0x7f;
    if (gso === VNET_GSO_NONE) {
      if (
        u8[h] & VNET_F_NEEDS_CSUM &&
        !completeChecksum(
          u8,
          off,
          len,
          vnetCsumStart(u8, h),
          vnetCsumOffset(u8, h),
          this.fast!.summer,
        )
      ) {
        return Drop.VnetBadCsumOffset;
      }
      return this.o.mode === MODE_VXLAN_L2
        ? this.txFrame(slot, off, len)
        : this.txPacket(slot, off, len);
    }
    const udp = gso === VNET_GSO_UDP_L4;
    // TCPv6 super-frames come only from a TAP (TSO6 is asked for in vxlan-l2 mode).
    if (this.o.mode === MODE_VXLAN_L2) {
      if (gso !== VNET_GSO_TCPV4 && gso !== VNET_GSO_TCPV6 && !udp) return Drop.VnetBadGsoType;
      return this.txSuperFrame(off, len, vnetGsoSize(u8, h), udp);
    }
    if (gso !== VNET_GSO_TCPV4 && !udp) return Drop.VnetBadGsoType;
    return this.txSuper(off, len, vnetGsoSize(u8, h), udp, false);
  }

  /**
   * vxlan-l2: a TSO/USO super-frame from the TAP. The same segmenting as txSuper, with
   * the frame's own Ethernet header in every segment, to the FDB's remote for the
   * destination MAC, or to every flood remote (unknown unicast, multicast).
   */
  private txSuperFrame(off: number, len: number, gsoSize: number, udp: boolean): number {
    const u8 = this.u8;
    const eth = this.eth;
    const code = ethernetParse(u8, off, len, eth);
    if (code !== Drop.None) return code;
    // TSO/USO super-frames come untagged IPv4 or IPv6: segment headers are VXLAN + 14.
    const v6 = eth.ethertype === ETHERTYPE_IPV6;
    if ((eth.ethertype !== ETHERTYPE_IPV4 && !v6) || eth.payloadOff !== off + ETH_HDR_LEN) {
      return Drop.UnsupportedEthertype;
    }
    const tpl = this.l2Tpl;
    for (let i = 0; i < ETH_HDR_LEN; i++) tpl[VXLAN_HDR_LEN + i] = u8[off + i];
    this.curTpl = tpl;
    this.curMtu = this.o.tunnelMtu;
    const ipOff = off + ETH_HDR_LEN;
    const ipLen = len - ETH_HDR_LEN;
    const fe = isMulticastMac(eth.dst) ? undefined : this.fdb.lookup(eth.dst);
    if (fe !== undefined) {
      vxlanWrite(tpl, 0, fe.vni);
      this.curRemote = fe.remote | 0;
      this.curPort = fe.port;
      return this.txSuper(ipOff, ipLen, gsoSize, udp, true);
    }
    const remotes = this.fdb.floodList();
    const n = remotes.length;
    if (n === 0) return Drop.NoFdb;
    vxlanWrite(tpl, 0, this.o.vni);
    this.curPort = this.o.port;
    for (let r = 0; r < n; r++) {
      this.curRemote = remotes[r] | 0;
      // Each copy is segmented again; the super-frame is counted once (copy: r > 0).
      const c = this.txSuper(ipOff, ipLen, gsoSize, udp, true, r > 0);
      if (c !== Drop.None) return c;
      if (r > 0) this.stats.counters[C.flood_copies]++;
    }
    return Drop.None;
  }

  /**
   * A TSO (TCP) or USO (UDP) super-packet: segment it (TCP at the MSS or the route's
   * smaller MTU; UDP at the sender's datagram size, which cannot change), encapsulate
   * each segment and queue them as UDP_SEGMENT messages on the flow's pool socket.
   * `bridged`: vxlan-l2, destination and template already set (txSuperFrame); a bridge
   * port sends no ICMP, so a DF segment too big for the tunnel is cut smaller. Only a
   * bridged super-frame may be IPv6.
   */
  private txSuper(
    off: number,
    len: number,
    gsoSize: number,
    udp: boolean,
    bridged: boolean,
    copy = false,
  ): number {
    const u8 = this.u8;
    const ip = this.ip;
    if (bridged && len >= IPV6_HDR_LEN && u8[off] >>> 4 === 6) {
      // The fields txSuper reads, from the IPv6 header (no DF: a bridge cuts smaller).
      ip.totalLen = IPV6_HDR_LEN + read16(u8, off + IPV6_PAYLOAD_LEN);
      if (ip.totalLen > len) return Drop.Ipv6Truncated;
      ip.tos = ipv6TrafficClass(u8, off);
      ip.ttl = u8[off + IPV6_HOP_LIMIT];
      ip.df = false;
    } else {
      const code = ipv4Parse(u8, off, len, ip);
      if (code !== Drop.None) return code;
    }
    const hdr = udp ? usoHeaderLen(u8, off, ip.totalLen) : tsoHeaderLen(u8, off, ip.totalLen);
    if (hdr === 0) {
      const v6 = bridged && u8[off] >>> 4 === 6;
      const l4 = udp ? IPPROTO_UDP : IPPROTO_TCP;
      if (v6 && ipv6UpperOffset(u8, off, ip.totalLen, l4) === 0) return Drop.Ipv6ExtUnsupported;
      return udp ? Drop.UdpTruncated : Drop.TcpBadOffset;
    }
    if (!bridged) {
      const code = this.resolve();
      if (code !== Drop.None) return code;
    }
    let mss = gsoSize;
    if (mss <= 0) return Drop.VnetBadGsoSize;
    // PMTU applies per segment: each is hdr + mss bytes of inner IPv4.
    if (hdr + mss > this.curMtu) {
      if (ip.df && !bridged) {
        this.fragNeeded(off, ip.totalLen, this.curMtu, this.curFrom);
        return Drop.TooBig;
      }
      // A UDP segment is a datagram of its sender's: it cannot be cut smaller.
      if (udp) return Drop.TooBig;
      mss = this.curMtu - hdr;
      if (mss < 8) return Drop.TooBig;
    }
    if (this.ipipOut !== undefined) return this.txSuperIpip(off, ip.totalLen, hdr, mss, udp);
    const o = this.o;
    const pool = this.pool!;
    const summer = this.fast!.summer;
    const payload = ip.totalLen - hdr;
    const segs = Math.ceil(payload / mss);
    const hs = SEG_PREFIX + hdr;
    const tos = o.tos === INHERIT ? ip.tos : o.tos;
    const ttl = o.ttl === INHERIT ? ip.ttl : o.ttl;
    const meta = ((tos & 0xff) << 8) | (ttl & 0xff);
    const segSize = hs + mss;
    let perMsg = 1;
    if (this.fast!.udpSegment) {
      perMsg = Math.floor(UDP_MAX_PAYLOAD / segSize);
      if (perMsg > UDP_MAX_SEGMENTS) perMsg = UDP_MAX_SEGMENTS;
      if (perMsg < 1) perMsg = 1;
    }
    let k = 0;
    // Header blocks go to the batch's header arena, in rounds of whole messages.
    const fit = Math.floor((this.slab.slotSize - this.slab.headroom) / hs);
    const round = fit >= perMsg ? fit - (fit % perMsg) : fit;
    if (round < 1) return Drop.TooBig;
    for (let first = 0; first < segs; first += round) {
      const n = Math.min(round, segs - first);
      const at = this.headerSpace(n * hs);
      if (at < 0) return Drop.PoolExhausted;
      const tpl = this.curTpl;
      for (let i = 0; i < SEG_PREFIX; i++) u8[at + i] = tpl[i];
      const made = udp
        ? usoSegment(u8, off, ip.totalLen, hdr, mss, at, SEG_PREFIX, summer, first, n)
        : tsoSegment(u8, off, ip.totalLen, hdr, mss, at, SEG_PREFIX, summer, first, n);
      if (made !== n) return udp ? Drop.UdpTruncated : Drop.TcpTruncated;
      if (first === 0) {
        // The flow's pool socket: its source port is the inner flow's hash.
        const sport = vxlanSourcePort(
          u8,
          at + VXLAN_HDR_LEN,
          hs - VXLAN_HDR_LEN,
          o.sportLo,
          o.sportHi,
        );
        k = (sport - o.sportLo) % pool.size;
      }
      for (let s = 0; s < n; ) {
        // Top up the socket's last message first: the previous super-packet of this
        // flow often ends in a short run (44 + 1 segments at MTU 1450 for 64 KiB).
        let m = this.poolRoom(k, segSize, meta, perMsg);
        let batch: GsoBatch;
        if (m > 0) {
          if (m > n - s) m = n - s;
          batch = pool.batches[k];
          batch.gso[batch.count - 1] = segSize;
        } else {
          m = Math.min(perMsg, n - s);
          batch = this.poolMessage(k, m > 1 ? segSize : 0, meta, 2 * m);
        }
        for (let j = s; j < s + m; j++)
          this.addSegment(batch, at + j * hs, hs, off, hdr, mss, payload, first + j);
        s += m;
      }
    }
    this.countSegmented(udp, segs, copy);
    return Drop.None;
  }

  /**
   * ipip: the segments of a super-packet as header-included raw packets, one message of
   * two ranges each (outer IPv4 + inner headers from the header arena, payload in
   * place). A raw socket has no UDP_SEGMENT: one sendmmsg carries a batch of them. The
   * outer header comes from ipipEncap with ID 0: the kernel fills in each packet's ID,
   * total length and checksum (raw(7), IP_HDRINCL).
   */
  private txSuperIpip(off: number, total: number, hdr: number, mss: number, udp: boolean): number {
    const u8 = this.u8;
    const _o = this.o;
    const out = this.ipipOut!;
    const summer = this.fast!.summer;
    const ph = this.ipipHdr;
    ph.dst = this.curRemote;
    ph.id = 0;
    const outer = ipipEncap(u8, off, hdr + mss, ph);
    if (outer < 0) return -outer;
    const payload = total - hdr;
    const segs = Math.ceil(payload / mss);
    const hs = IPV4_HDR_LEN + hdr;
    const fit = Math.floor((this.slab.slotSize - this.slab.headroom) / hs);
    for (let first = 0; first < segs; first += fit) {
      const n = Math.min(fit, segs - first);
      const at = this.headerSpace(n * hs);
      if (at < 0) return Drop.PoolExhausted;
      for (let i = 0; i < IPV4_HDR_LEN; i++) u8[at + i] = u8[outer + i];
      const made = udp
        ? usoSegment(u8, off, total, hdr, mss, at, IPV4_HDR_LEN, summer, first, n)
        : tsoSegment(u8, off, total, hdr, mss, at, IPV4_HDR_LEN, summer, first, n);
      if (made !== n) return udp ? Drop.UdpTruncated : Drop.TcpTruncated;
      for (let j = 0; j < n; j++) {
        if (!out.pushGsoGather(this.hdrSlot, this.curRemote, 0, 0, 0, 2)) {
          this.flushIpip();
          out.pushGsoGather(this.hdrSlot, this.curRemote, 0, 0, 0, 2);
        }
        this.addSegment(out, at + j * hs, hs, off, hdr, mss, payload, first + j);
      }
    }
    this.countSegmented(udp, segs, false);
    return Drop.None;
  }

  /** Segment k of a gathered message: its header block, then its payload in place. */
  private addSegment(
    b: Batch,
    block: number,
    hs: number,
    off: number,
    hdr: number,
    mss: number,
    payload: number,
    k: number,
  ): void {
    b.addRange(block, hs);
    b.addRange(tsoPayloadOff(off, hdr, mss, k), tsoPayloadLen(payload, mss, k));
  }

  /** `copy`: a flood copy of a super-packet already counted (only its segments count). */
  private countSegmented(udp: boolean, segs: number, copy: boolean): void {
    const c = this.stats.counters;
    c[C.encap_packets] += segs;
    if (copy) return;
    if (udp) {
      c[C.uso_superpackets]++;
      c[C.uso_segments] += segs;
    } else {
      c[C.tso_superpackets]++;
      c[C.tso_segments] += segs;
    }
  }

  private flushIpip(): void {
    const b = this.ipipOut!;
    if (b.count === 0) return;
    const c = this.stats.counters;
    const sent = this.fast!.raw!.sendGather(b, 0, b.count);
    c[C.underlay_tx_batches]++;
    c[C.underlay_tx_packets] += sent;
    for (let i = 0; i < sent; i++) c[C.underlay_tx_bytes] += b.len[i];
    if (sent < b.count) this.stats.drops[Drop.SendError] += b.count - sent;
    b.clear();
  }

  /**
   * `bytes` of scratch for segment header blocks, packed into slots taken for this
   * batch (freed with the other extra slots after it): -1 when the pool is empty.
   */
  private headerSpace(bytes: number): number {
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

  /**
   * How many more `segSize`-byte segments pool socket k's last message can take: it
   * must go to the resolved destination with the same TOS/TTL and hold only whole
   * segments of that size (UDP_SEGMENT cuts a message into equal datagrams, the last
   * may be shorter: so none may follow a short one), at most `perMsg` of them. 0: start
   * a new message.
   */
  private poolRoom(k: number, segSize: number, meta: number, perMsg: number): number {
    const b = this.pool!.batches[k];
    const i = b.count - 1;
    // (curRemote may be held signed; the batch column is unsigned.)
    if (i < 0 || (b.addr[i] | 0) !== (this.curRemote | 0) || b.port[i] !== this.curPort) return 0;
    if (b.tosTtl[i] !== meta || (b.gso[i] !== segSize && b.gso[i] !== 0)) return 0;
    const len = b.len[i];
    const have = (len / segSize) | 0;
    if (have * segSize !== len || have >= perMsg) return 0;
    const g = b.gather!;
    const ranges = (g.capacity - g.used) >> 1;
    return Math.min(perMsg - have, ranges);
  }

  /**
   * Start a gathered message of `ranges` ranges to the resolved destination on pool
   * socket k's batch, sending that batch first when it is full. Returns the batch.
   */
  private poolMessage(k: number, gso: number, meta: number, ranges: number): GsoBatch {
    const b = this.pool!.batches[k];
    if (!b.pushGsoGather(this.hdrSlot, this.curRemote, this.curPort, gso, meta, ranges)) {
      this.flushPoolSocket(k);
      b.pushGsoGather(this.hdrSlot, this.curRemote, this.curPort, gso, meta, ranges);
    }
    return b;
  }

  private flushPool(): void {
    const pool = this.pool!;
    for (let k = 0; k < pool.size; k++) if (pool.batches[k].count > 0) this.flushPoolSocket(k);
  }

  private flushPoolSocket(k: number): void {
    const pool = this.pool!;
    const b = pool.batches[k];
    const c = this.stats.counters;
    const sent = pool.sockets[k].sendGso(b, 0, b.count);
    c[C.underlay_tx_batches]++;
    c[C.gso_sends] += sent;
    for (let i = 0; i < sent; i++) {
      const len = b.len[i];
      const g = b.gso[i];
      c[C.underlay_tx_bytes] += len;
      c[C.underlay_tx_packets] += g > 0 ? Math.ceil(len / g) : 1;
    }
    if (sent < b.count) this.stats.drops[Drop.SendError] += b.count - sent;
    b.clear();
  }

  /** Encapsulate the L3 packet at [off, off+len) towards the resolved destination. */
  private encapL3(slot: number, off: number, len: number): number {
    if (this.o.mode === MODE_IPIP) {
      const ph = this.ipipHdr;
      ph.dst = this.curRemote;
      ph.id = this.nextId();
      const start = ipipEncap(this.u8, off, len, ph);
      if (start < 0) return -start;
      this.stats.counters[C.encap_packets]++;
      return this.pushOuter(slot, start, len + IPV4_HDR_LEN, this.curRemote);
    }
    const start = vxlanEncapL3Template(this.u8, off, len, this.curTpl, 0);
    if (start < 0) return -start;
    return this.pushVxlan(slot, start, len + VXLAN_L3_HEADROOM, off, this.curRemote, this.curPort);
  }

  /** DF clear, too big: fragment before encapsulating, each fragment in its own slot. */
  private fragmentInner(off: number, total: number, mtu: number): number {
    const n = ipv4FragmentCount(this.u8, off, total, mtu);
    if (n === 0) return Drop.TooBig;
    for (let k = 0; k < n; k++) {
      const frag = this.takeSlot();
      if (frag < 0) return Drop.PoolExhausted;
      const fragOff = this.slab.dataOffset(frag);
      const fragLen = ipv4WriteFragment(this.u8, off, total, mtu, k, this.u8, fragOff);
      const code = this.encapL3(frag, fragOff, fragLen);
      if (code !== Drop.None) return code;
    }
    this.stats.counters[C.fragmented_inner]++;
    return Drop.None;
  }

  /** Answer the sender with ICMP "fragmentation needed" (RFC 1191) through the TUN. */
  private fragNeeded(off: number, total: number, mtu: number, from: number): void {
    const reply = this.takeSlot();
    if (reply < 0) return;
    const at = this.slab.dataOffset(reply);
    const e = this.icmpErr;
    e.mtu = mtu;
    e.from = from;
    e.id = this.nextId();
    const n = icmpWriteError(this.u8, at, this.u8, off, total, e);
    if (n === 0) return;
    this.devPush(reply, at, n);
    this.stats.counters[C.icmp_frag_needed_sent]++;
  }

  /** A slot for a packet we create (fragment, copy, ICMP error), freed after the batch. */
  private takeSlot(): number {
    const slot = this.slab.alloc();
    if (slot < 0) {
      this.drop(Drop.PoolExhausted);
      return -1;
    }
    this.extra[this.extraCount++] = slot;
    return slot;
  }

  /** vxlan-l2: an Ethernet frame from the TAP (a bridge port). */
  private txFrame(slot: number, off: number, len: number): number {
    const eth = this.eth;
    const code = ethernetParse(this.u8, off, len, eth);
    if (code !== Drop.None) return code;
    // A bridge port does not fragment or answer PMTU (neither does the kernel's vxlan).
    if (len - ETH_HDR_LEN > this.o.tunnelMtu) return Drop.TooBig;
    if (isMulticastMac(eth.dst)) {
      if (eth.ethertype === ETHERTYPE_ARP && this.o.proxyArp && this.proxyArp(slot, off, eth)) {
        return Drop.None;
      }
      return this.flood(slot, off, len, eth);
    }
    const fe = this.fdb.lookup(eth.dst);
    if (fe === undefined) return this.flood(slot, off, len, eth);
    const start = vxlanEncapL2(this.u8, off, fe.vni);
    if (start < 0) return -start;
    return this.pushVxlan(slot, start, len + 8, this.innerIpOff(eth), fe.remote, fe.port);
  }

  /**
   * Answer an ARP request from the neighbour table, as the kernel's vxlan `proxy` does,
   * instead of flooding it to every remote. Unlike the kernel (which then drops the
   * request), a miss falls through to flooding so resolution still works without
   * a programmed entry.
   */
  private proxyArp(slot: number, off: number, eth: EthernetInfo): boolean {
    const arp = this.arp;
    if (arpParse(this.u8, eth.payloadOff, eth.payloadLen, arp) !== Drop.None) return false;
    if (arp.op !== ARP_OP_REQUEST) return false;
    const mac = this.neigh.resolve(arp.tpa);
    if (mac < 0) return false;
    arpRequestToReply(this.u8, eth.payloadOff, mac);
    ethernetReplyHeader(this.u8, off, mac);
    this.devPush(slot, off, eth.payloadOff + 28 - off);
    this.stats.counters[C.arp_proxied]++;
    return true;
  }

  /** Head-end replication to every all-zeros FDB remote; the first copy is the original. */
  private flood(slot: number, off: number, len: number, eth: EthernetInfo): number {
    const remotes = this.fdb.floodList();
    const n = remotes.length;
    if (n === 0) return Drop.NoFdb;
    const innerIp = this.innerIpOff(eth);
    for (let r = 1; r < n; r++) {
      if (this.toUnderlay.count + 1 >= this.toUnderlay.capacity) this.flushUnderlay();
      const copy = this.takeSlot();
      if (copy < 0) continue;
      const copyOff = copy * this.slab.slotSize + (off - slot * this.slab.slotSize);
      this.u8.copyWithin(copyOff, off, off + len);
      const start = vxlanEncapL2(this.u8, copyOff, this.o.vni);
      const ipOff = innerIp < 0 ? -1 : copyOff + (innerIp - off);
      this.pushVxlan(copy, start, len + 8, ipOff, remotes[r], this.o.port);
      this.stats.counters[C.flood_copies]++;
    }
    const start = vxlanEncapL2(this.u8, off, this.o.vni);
    return this.pushVxlan(slot, start, len + 8, innerIp, remotes[0], this.o.port);
  }

  private innerIpOff(eth: EthernetInfo): number {
    return eth.ethertype === ETHERTYPE_IPV4 ? eth.payloadOff : -1;
  }

  /**
   * Outer IPv4 + UDP in front of a VXLAN packet at [start, start+len); `innerIp` is the
   * inner IPv4 header (for inherited TTL/TOS/DF) or -1.
   */
  private pushVxlan(
    slot: number,
    start: number,
    len: number,
    innerIp: number,
    remote: number,
    port: number,
  ): number {
    const o = this.o;
    const u8 = this.u8;
    const udpOff = start - UDP_HDR_LEN;
    const ipOff = udpOff - IPV4_HDR_LEN;
    if (ipOff < slot * this.slab.slotSize) return Drop.NoHeadroom;
    const inner = start + 8; // the inner Ethernet frame, for the flow hash
    let sport = vxlanSourcePort(u8, inner, len - 8, o.sportLo, o.sportHi);
    // With the fast path on, one flow's small packets leave from its pool port too.
    const ports = this.poolPorts;
    if (ports !== undefined) sport = ports[(sport - o.sportLo) % ports.length];
    const innerTos = innerIp >= 0 ? u8[innerIp + IPV4_TOS] : 0;
    const tos = o.tos === INHERIT ? innerTos : o.tos;
    const ttl = o.ttl === INHERIT ? (innerIp >= 0 ? u8[innerIp + IPV4_TTL] : 64) : o.ttl;
    const innerDf = innerIp >= 0 && ((u8[innerIp + IPV4_FLAGS_FRAG] << 8) & IPV4_DF) !== 0;
    const df = o.df === DfPolicy.Set || (o.df === DfPolicy.Copy && innerDf);
    const total = len + UDP_HDR_LEN + IPV4_HDR_LEN;
    const h = this.outerIp;
    h.tos = tos;
    h.totalLen = total;
    h.id = this.nextId();
    h.flags = df ? IPV4_DF : 0;
    h.ttl = ttl;
    h.dst = remote;
    ipv4Write(u8, ipOff, h);
    udpWrite(u8, udpOff, sport, port, len + UDP_HDR_LEN);
    this.stats.counters[C.encap_packets]++;
    return this.pushOuter(slot, ipOff, total, remote);
  }

  /**
   * Queue a finished outer packet. One larger than the underlay MTU can only have come
   * from the fragment-outer policy (DF clear): cut it into outer fragments, which the
   * receiving kernel reassembles before our socket sees the datagram.
   */
  private pushOuter(slot: number, ipOff: number, total: number, remote: number): number {
    const mtu = this.o.underlayMtu;
    if (total <= mtu) {
      this.toUnderlay.push(slot, ipOff, total, remote, 0);
      return Drop.None;
    }
    if ((this.u8[ipOff + IPV4_FLAGS_FRAG] << 8) & IPV4_DF) return Drop.TooBig;
    const n = ipv4FragmentCount(this.u8, ipOff, total, mtu);
    if (n === 0) return Drop.TooBig;
    if (this.toUnderlay.count + n > this.toUnderlay.capacity) this.flushUnderlay();
    for (let k = 0; k < n; k++) {
      const frag = this.takeSlot();
      if (frag < 0) return Drop.PoolExhausted;
      const at = this.slab.dataOffset(frag);
      const len = ipv4WriteFragment(this.u8, ipOff, total, mtu, k, this.u8, at);
      this.toUnderlay.push(frag, at, len, remote, 0);
    }
    this.stats.counters[C.fragmented_outer]++;
    return Drop.None;
  }

  private nextId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }

  private flushUnderlay(): void {
    const b = this.toUnderlay;
    if (b.count === 0) return;
    const c = this.stats.counters;
    const sent = this.underlay.sendBatch(b, 0, b.count);
    c[C.underlay_tx_batches]++;
    c[C.underlay_tx_packets] += sent;
    for (let i = 0; i < sent; i++) c[C.underlay_tx_bytes] += b.len[i];
    if (sent < b.count) this.stats.drops[Drop.SendError] += b.count - sent;
    b.clear();
  }

  private flushDevice(): void {
    const b = this.toDevice;
    if (b.count === 0) return;
    const c = this.stats.counters;
    const written = this.device.sendBatch(b, 0, b.count);
    c[C.tun_tx_packets] += written;
    const hdr = this.vnet ? VNET_LEN : 0;
    for (let i = 0; i < written; i++) c[C.tun_tx_bytes] += b.len[i] - hdr;
    if (written < b.count) c[C.tun_write_errors] += b.count - written;
    b.clear();
  }

  // ---------------------------------------------------------------- underlay -> device

  /** A batch received from the underlay socket. Bound once, handed to the reader. */
  readonly fromUnderlay = (b: Batch): void => {
    const c = this.stats.counters;
    c[C.underlay_rx_batches]++;
    const n = b.count;
    const dev = this.toDevice;
    const rxGso = this.fast?.rxGso;
    this.rxBatch = b;
    // Coalescing verifies every TCP segment's checksum: sum the datagrams that are
    // single segments in one addon call (the call costs as much as summing 1 KB).
    const pre = this.batchPre;
    let npre = 0;
    if (this.fast !== undefined) {
      const summer = this.fast.summer;
      const at = this.o.mode === MODE_IPIP ? IPIP_TCP_AT : RX_TCP_AT;
      npre = Math.min(n, SUM_MANY);
      for (let i = 0; i < npre; i++) {
        const len = b.len[i];
        const single = len > at && (rxGso === undefined || rxGso[i] === 0 || len <= rxGso[i]);
        summer.offs[i] = b.off[i] + at;
        summer.lens[i] = single ? len - at : 0;
      }
      summer.sumMany(npre);
      for (let i = 0; i < npre; i++) pre[i] = summer.lens[i] > 0 ? summer.out[i] : -1;
    }
    for (let i = 0; i < n; i++) {
      c[C.underlay_rx_packets]++;
      c[C.underlay_rx_bytes] += b.len[i];
      if (this.allow !== undefined && !this.allow.has(b.addr[i])) {
        this.drop(Drop.PeerNotAllowed);
        continue;
      }
      const gso = rxGso !== undefined ? rxGso[i] : 0;
      if (gso > 0 && b.len[i] > gso) {
        // UDP_GRO: several datagrams of one flow, each `gso` bytes but the last.
        const off = b.off[i];
        const end = off + b.len[i];
        c[C.gro_datagrams]++;
        // Inner TCP sums of every segment in one addon call, assuming the usual layout
        // (VXLAN + Ethernet + 20-byte IPv4); rxVxlan uses one only where that holds.
        const summer = this.fast!.summer;
        let m = 0;
        for (let s = off; s < end && m < SUM_MANY; s += gso, m++) {
          const segLen = Math.min(end - s, gso);
          summer.offs[m] = s + RX_TCP_AT;
          summer.lens[m] = segLen > RX_TCP_AT ? segLen - RX_TCP_AT : 0;
        }
        summer.sumMany(m);
        let j = 0;
        for (let s = off; s < end; s += gso, j++) {
          c[C.gro_segments]++;
          const segLen = Math.min(end - s, gso);
          const pre = j < m && segLen > RX_TCP_AT ? summer.out[j] : -1;
          const code = this.rxVxlan(b.slot[i], s, segLen, i, pre);
          if (code !== Drop.None) this.drop(code);
        }
        continue;
      }
      const code =
        this.o.mode === MODE_IPIP
          ? this.rxIpip(b.slot[i], b.off[i], b.len[i], i < npre ? pre[i] : -1)
          : this.rxVxlan(b.slot[i], b.off[i], b.len[i], i, i < npre ? pre[i] : -1);
      if (code !== Drop.None) this.drop(code);
      if (dev.count === dev.capacity) this.flushDevice();
    }
    const coal = this.coal;
    if (coal !== undefined) {
      coal.flush();
      c[C.coalesced_writes] = coal.mergedWrites;
      c[C.coalesced_segments] = coal.mergedSegments;
      c[C.coalesced_udp_writes] = coal.mergedUdpWrites;
      c[C.coalesced_udp_datagrams] = coal.mergedUdpDatagrams;
      c[C.rx_inner_csum_bad] = coal.badChecksum;
    }
    this.flushDevice();
    b.freeSlots(this.slab, 0, n);
    this.freeExtra();
  };

  /** VnetSink: a packet that already starts with its virtio_net_hdr. */
  deviceVnet(slot: number, off: number, len: number): void {
    if (this.toDevice.count === this.toDevice.capacity) this.flushDevice();
    this.toDevice.push(slot, off, len, 0, 0);
  }

  /** VnetSink: a coalesced super-packet, written from its ranges with one writev(). */
  deviceVnetGather(slot: number, offs: Uint32Array, lens: Uint32Array, count: number): void {
    const b = this.toDevice;
    if (b.count === b.capacity || !b.pushGather(slot, 0, 0, count)) {
      this.flushDevice();
      b.pushGather(slot, 0, 0, count);
    }
    for (let i = 0; i < count; i++) b.addRange(offs[i], lens[i]);
  }

  /**
   * Queue a packet for the device. With a vnet header: after any open coalescing group
   * (order), behind an all-zero header (the kernel verifies checksums itself).
   */
  private devPush(slot: number, off: number, len: number): void {
    if (!this.vnet) {
      if (this.toDevice.count === this.toDevice.capacity) this.flushDevice();
      this.toDevice.push(slot, off, len, 0, 0);
      return;
    }
    this.coal?.flush();
    if (this.o.mode === MODE_VXLAN_L2) {
      // The vnet header is a range of its own (see coalesce.ts: the 10 bytes before a
      // frame may belong to the previous datagram of a GRO batch).
      const h = this.vnetScratch();
      if (h < 0) {
        this.drop(Drop.PoolExhausted);
        return;
      }
      vnetWritePlain(this.u8, h, 0);
      const r = this.frameRanges;
      r.off[0] = h;
      r.len[0] = VNET_LEN;
      r.off[1] = off;
      r.len[1] = len;
      this.deviceVnetGather(slot, r.off, r.len, 2);
      return;
    }
    vnetWritePlain(this.u8, off - VNET_LEN, 0);
    this.deviceVnet(slot, off - VNET_LEN, len + VNET_LEN);
  }

  /** VnetSink: scratch for a vnet header, in the batch's header arena. */
  vnetScratch(): number {
    return this.headerSpace(VNET_LEN);
  }

  /** `pre`: sum of [off + RX_TCP_AT, off + len) when known (GRO datagrams), else -1. */
  /**
   * `idx`: the datagram's index in the batch being handled (its source address is read
   * only for learning: an address above 2^31 passed per call would be boxed).
   */
  private rxVxlan(slot: number, off: number, len: number, idx: number, pre = -1): number {
    const vx = this.vx;
    let code = vxlanDecap(this.u8, off, len, vx);
    if (code !== Drop.None) return code;
    if (vx.vni !== this.o.vni) return Drop.UnknownVni;
    const eth = this.eth;
    code = ethernetParse(this.u8, vx.innerOff, vx.innerLen, eth);
    if (code !== Drop.None) return code;
    // vxlan-l2 in a method of its own, so that this one stays small for the L3 path: V8
    // inlines by bytecode size, and with the L2 branch (grown by IPv6 and queue learning)
    // inline here, L3 TCP measured ~7 % slower (bench/fastpath.ts, 6 alternated pairs
    // against the code before: median 3.48 vs 3.76 Gbit/s; split: 4.01 vs 3.94).
    if (this.o.mode === MODE_VXLAN_L2) return this.rxFrame(slot, off, len, idx, pre);
    // flannel mode carries IP only; the TUN takes the packet without its Ethernet header.
    if (eth.ethertype === ETHERTYPE_IPV4) {
      code = ipv4Parse(this.u8, eth.payloadOff, eth.payloadLen, this.ip);
      if (code !== Drop.None) return code;
      const coal = this.coal;
      const ipOff = eth.payloadOff;
      const total = this.ip.totalLen;
      const known = ipOff + IPV4_HDR_LEN === off + RX_TCP_AT && ipOff + total === off + len;
      if (coal === undefined || !coal.add(slot, ipOff, total, known ? pre : -1)) {
        this.devPush(slot, eth.payloadOff, this.ip.totalLen);
      }
    } else if (eth.ethertype === ETHERTYPE_IPV6) {
      this.devPush(slot, eth.payloadOff, eth.payloadLen);
    } else {
      return Drop.UnsupportedEthertype;
    }
    this.stats.counters[C.decap_packets]++;
    return Drop.None;
  }

  /** vxlan-l2: the frame behind the VXLAN header just parsed into this.vx / this.eth. */
  private rxFrame(slot: number, off: number, len: number, idx: number, pre: number): number {
    const vx = this.vx;
    const eth = this.eth;
    if (this.o.learning) {
      const from = this.rxBatch!.addr[idx];
      const mac = readMac(this.u8, vx.innerOff + ETH_SRC);
      const learned = this.fdb.learn(mac, from);
      if (learned === Learn.StaticConflict) return Drop.FdbStaticConflict;
      if (learned === Learn.Created || learned === Learn.Moved) {
        if (this.onLearn !== undefined) this.onLearn(mac, from, learned === Learn.Created);
        else if (learned === Learn.Created) this.stats.counters[C.fdb_learned]++;
      }
    }
    const coal = this.coal;
    const ipOff = eth.payloadOff;
    // An untagged IPv4 TCP segment may join a coalesced write; a bridge port passes
    // everything else (even a malformed IPv4 packet) on as it came.
    if (
      coal !== undefined &&
      eth.ethertype === ETHERTYPE_IPV4 &&
      ipOff === vx.innerOff + ETH_HDR_LEN &&
      ipv4Parse(this.u8, ipOff, eth.payloadLen, this.ip) === Drop.None
    ) {
      const total = this.ip.totalLen;
      const known = ipOff + IPV4_HDR_LEN === off + RX_TCP_AT && ipOff + total === off + len;
      if (coal.add(slot, ipOff, total, known ? pre : -1)) {
        this.stats.counters[C.decap_packets]++;
        return Drop.None;
      }
    } else if (
      coal !== undefined &&
      eth.ethertype === ETHERTYPE_IPV6 &&
      ipOff === vx.innerOff + ETH_HDR_LEN &&
      eth.payloadLen >= IPV6_HDR_LEN
    ) {
      // Untagged IPv6 TCP too (the coalescer checks the rest; it sums for itself).
      const total = IPV6_HDR_LEN + read16(this.u8, ipOff + IPV6_PAYLOAD_LEN);
      if (total <= eth.payloadLen && coal.add(slot, ipOff, total)) {
        this.stats.counters[C.decap_packets]++;
        return Drop.None;
      }
    }
    this.devPush(slot, vx.innerOff, vx.innerLen);
    this.stats.counters[C.decap_packets]++;
    return Drop.None;
  }

  private rxIpip(slot: number, off: number, len: number, pre = -1): number {
    const info = this.ipip;
    const code = ipipDecap(this.u8, off, len, info);
    if (code !== Drop.None) return code;
    const coal = this.coal;
    const ipOff = info.innerOff;
    const total = info.innerLen;
    // `pre` was summed from off + 40: usable when both headers are 20 bytes and the inner
    // packet ends where the datagram does.
    const known = ipOff + IPV4_HDR_LEN === off + IPIP_TCP_AT && ipOff + total === off + len;
    if (coal?.add(slot, ipOff, total, known ? pre : -1)) {
      this.stats.counters[C.decap_packets]++;
      return Drop.None;
    }
    this.devPush(slot, info.innerOff, info.innerLen);
    this.stats.counters[C.decap_packets]++;
    return Drop.None;
  }
}
