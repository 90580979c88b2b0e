// Device -> underlay, one packet: route (and in vxlan mode neighbour + FDB) lookup,
// the tunnel header in front, the outer IPv4 (+UDP) in front of that, queued for the
// raw socket. Packets never move: headers are written into the slot's headroom.
//
// The outer IPv4/UDP header is ours (raw socket, IP_HDRINCL) rather than the kernel's
// (UDP socket) so that the policy decisions stay in TypeScript: a per-flow UDP source
// port (RFC 7348 §5, for underlay ECMP), DF, TTL and TOS per packet.
import { Drop } from "../encap/drop.js";
import { DfPolicy, type IpipParams, ipipEncap, newIpipParams, sitEncap } from "../encap/ipip.js";
import {
  IPPROTO_UDP,
  IPV4_DF,
  IPV4_FLAGS_FRAG,
  IPV4_HDR_LEN,
  IPV4_TOS,
  IPV4_TTL,
  type Ipv4Fields,
  ipv4Parse,
  ipv4Write,
  newIpv4Fields,
} from "../encap/ipv4.js";
import { IPV6_DST, IPV6_HOP_LIMIT, ipv6Parse, ipv6TrafficClass } from "../encap/ipv6.js";
import { UDP_HDR_LEN, udpWrite } from "../encap/udp.js";
import {
  VXLAN_L3_HEADROOM,
  vxlanEncapL3Template,
  vxlanSourcePort,
  vxlanWriteL3Template,
} from "../encap/vxlan.js";
import type { Route, Route6 } from "../fdb/index.js";
import type { DeviceOut } from "./device-out.js";
import { FRAG_INNER, type FwdState, INHERIT, NO_TEMPLATE } from "./state.js";
import { C } from "./stats.js";
import { TooBig } from "./too-big.js";
import type { UnderlayOut } from "./underlay-out.js";

/** A resolved vxlan-mode destination (see Sender.resolveDest). */
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

export class Sender {
  readonly tooBig: TooBig;
  private readonly u8: Uint8Array;
  /**
   * vxlan mode: route -> neighbour -> FDB resolved once per route and kept while no
   * table changes (their version counters), so the per-packet path neither looks up
   * 48-bit MACs nor passes them around: V8 boxes such numbers (a heap allocation) at
   * every call that is not inlined (bench/fastpath-alloc.ts).
   */
  private readonly dests = new Map<Route, Dest>();
  private destVersion = -1;
  /** The same for IPv6 routes (gateway through the IPv6 neighbour table). */
  private readonly dests6 = new Map<Route6, Dest>();
  private destVersion6 = -1;
  // The header writers' parameters: filled per packet, never reallocated.
  private readonly ipipHdr: IpipParams = newIpipParams();
  private readonly outerIp: Ipv4Fields = { ...newIpv4Fields(), protocol: IPPROTO_UDP };

  constructor(
    private readonly s: FwdState,
    private readonly out: UnderlayOut,
    dev: DeviceOut,
  ) {
    this.u8 = s.u8;
    this.tooBig = new TooBig(s, this, out, dev);
    const o = s.o;
    this.ipipHdr.src = s.localIp32;
    this.ipipHdr.ttl = o.ttl;
    this.ipipHdr.tos = o.tos;
    this.ipipHdr.df = o.df;
    this.outerIp.src = s.localIp32;
  }

  /** New tables: forget the resolved destinations. */
  clearDests(): void {
    this.dests.clear();
    this.destVersion = -1;
    this.dests6.clear();
    this.destVersion6 = -1;
  }

  /** L3 modes: an IP packet from the TUN. */
  txPacket(slot: number, off: number, len: number): number {
    const s = this.s;
    const ip = s.ip;
    let code = ipv4Parse(this.u8, off, len, ip);
    // IPv6 by its version nibble, tested only once the IPv4 parse has failed: the IPv4
    // path pays nothing for it.
    if (code !== Drop.None) return this.u8[off] >>> 4 === 6 ? this.txPacket6(slot, off, len) : code;
    code = this.resolve();
    if (code !== Drop.None) return code;
    const total = ip.totalLen;
    const mtu = s.curMtu;
    if (total <= mtu) return this.encapL3(slot, off, total);
    // Too big for the tunnel path: what the kernel's tunnels do.
    if (ip.df) {
      // From the next hop's address, as a router on the path would: a source that is
      // one of the receiving host's own addresses would be dropped as a martian.
      this.tooBig.fragNeeded(off, total, mtu, s.curFrom);
      return Drop.TooBig;
    }
    return s.o.fragment === FRAG_INNER
      ? this.tooBig.fragmentInner(off, total, mtu)
      : this.encapL3(slot, off, total);
  }

  /**
   * An IPv6 packet from the TUN: routed like IPv4, but never fragmented on the way
   * (RFC 8200 §5): one too big for the tunnel gets a Packet Too Big with its MTU.
   */
  private txPacket6(slot: number, off: number, len: number): number {
    const s = this.s;
    let code = ipv6Parse(this.u8, off, len, s.ip6);
    if (code !== Drop.None) return code;
    code = this.resolve6(off);
    if (code !== Drop.None) return code;
    const total = s.ip6.totalLen;
    if (total > s.curMtu) {
      this.tooBig.packetTooBig(off, total, s.curMtu, s.curRoute6!);
      return Drop.TooBig;
    }
    return s.ipip ? this.encapSit(slot, off, total) : this.encapL3(slot, off, total);
  }

  /** ipip mode, IPv6 inside: 6in4 (protocol 41) to s.curRemote. */
  private encapSit(slot: number, off: number, len: number): number {
    const ph = this.ipipHdr;
    ph.dst = this.s.curRemote;
    ph.id = this.s.nextId();
    const start = sitEncap(this.u8, off, len, ph);
    if (start < 0) return -start;
    this.s.stats.counters[C.encap_packets]++;
    return this.pushOuter(slot, start, len + IPV4_HDR_LEN);
  }

  /** resolve() for the IPv6 packet at `off`: its route, then (vxlan) the cached Dest. */
  resolve6(off: number): number {
    const s = this.s;
    const route = s.routes6.lookup(this.u8, off + IPV6_DST);
    if (route === undefined) return Drop.NoRoute;
    if (s.ipip) {
      s.curRemote = route.remote | 0;
      if (s.curRemote === 0) return Drop.NoRoute;
    } else {
      const v = s.routes6.version + s.neigh6.version + s.fdb.version;
      if (v !== this.destVersion6) {
        this.dests6.clear();
        this.destVersion6 = v;
      }
      let d = this.dests6.get(route);
      if (d === undefined) {
        // Allocates (the key, the template): once per route and table change.
        const mac =
          route.gateway !== undefined
            ? s.neigh6.resolve(route.gateway)
            : s.neigh6.resolve(this.u8, off + IPV6_DST);
        d = this.destFor(mac);
        this.dests6.set(route, d);
      }
      if (d.code !== Drop.None) return d.code;
      s.curRemote = d.remote;
      s.curPort = d.port;
      s.curTpl = d.tpl;
    }
    s.curMtu = route.mtu || s.o.tunnelMtu;
    s.curRoute6 = route;
    return Drop.None;
  }

  /** Route (and in vxlan mode neighbour + FDB) lookup for s.ip.dst into s.cur*. */
  resolve(): number {
    const s = this.s;
    // int32 (| 0): an address above 2^31 passed to a call that is not inlined is boxed.
    const dst = s.ip.dst | 0;
    const route = s.routes.lookup(dst);
    if (route === undefined) return Drop.NoRoute;
    if (s.ipip) {
      s.curRemote = (route.remote || route.gateway) | 0;
      if (s.curRemote === 0) return Drop.NoRoute;
    } else {
      // All three counters only grow: their sum moves whenever one of them does.
      const v = s.routes.version + s.neigh.version + s.fdb.version;
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
      s.curRemote = d.remote;
      s.curPort = d.port;
      s.curTpl = d.tpl;
    }
    s.curMtu = route.mtu || s.o.tunnelMtu;
    s.curFrom = (route.gateway || dst) | 0;
    return Drop.None;
  }

  /**
   * flannel's model: route via the peer's VTEP address (onlink), whose permanent
   * neighbour entry gives the VTEP MAC, whose FDB entry gives the node's address.
   * Allocates (the cache entry, its header template): once per route and table change.
   */
  private resolveDest(route: Route, dst: number): Dest {
    return this.destFor(this.s.neigh.resolve(route.gateway || dst));
  }

  /** The destination behind VTEP MAC `mac` (-1: no neighbour entry), through the FDB. */
  private destFor(mac: number): Dest {
    const s = this.s;
    if (mac < 0) return new Dest(Drop.NoNeigh, 0, 0, 0, NO_TEMPLATE);
    const fe = s.fdb.lookup(mac);
    if (fe === undefined) return new Dest(Drop.NoFdb, 0, 0, 0, NO_TEMPLATE);
    const tpl = new Uint8Array(VXLAN_L3_HEADROOM);
    vxlanWriteL3Template(tpl, 0, fe.vni, s.o.vtepMac, mac);
    return new Dest(Drop.None, fe.remote | 0, fe.vni, fe.port, tpl);
  }

  /** Encapsulate the L3 packet at [off, off+len) towards the resolved destination. */
  encapL3(slot: number, off: number, len: number): number {
    const s = this.s;
    if (s.ipip) {
      const ph = this.ipipHdr;
      ph.dst = s.curRemote;
      ph.id = s.nextId();
      const start = ipipEncap(this.u8, off, len, ph);
      if (start < 0) return -start;
      s.stats.counters[C.encap_packets]++;
      return this.pushOuter(slot, start, len + IPV4_HDR_LEN);
    }
    const start = vxlanEncapL3Template(this.u8, off, len, s.curTpl, 0);
    if (start < 0) return -start;
    return this.pushVxlan(slot, start, len + VXLAN_L3_HEADROOM, off);
  }

  /**
   * The IPIP fast path's outer header for the current destination, in front of the
   * first segment (hdr + mss bytes) at `off`, with ID 0: the kernel fills in each
   * packet's ID, total length and checksum (raw(7), IP_HDRINCL). Returns its offset or
   * a negative Drop code.
   */
  ipipSegmentHeader(off: number, segLen: number): number {
    const ph = this.ipipHdr;
    ph.dst = this.s.curRemote;
    ph.id = 0;
    const u8 = this.u8;
    return u8[off] >>> 4 === 6 ? sitEncap(u8, off, segLen, ph) : ipipEncap(u8, off, segLen, ph);
  }

  /**
   * Outer IPv4 + UDP in front of a VXLAN packet at [start, start+len), to s.curRemote
   * and s.curPort; `innerIp` is the inner IP header (for inherited TTL/TOS, and DF from
   * IPv4; an IPv6 packet has no DF to copy) or -1.
   */
  pushVxlan(slot: number, start: number, len: number, innerIp: number): number {
    const s = this.s;
    const o = s.o;
    const u8 = this.u8;
    const udpOff = start - UDP_HDR_LEN;
    const ipOff = udpOff - IPV4_HDR_LEN;
    if (ipOff < slot * s.slab.slotSize) return Drop.NoHeadroom;
    const inner = start + 8; // the inner Ethernet frame, for the flow hash
    let sport = vxlanSourcePort(u8, inner, len - 8, o.sportLo, o.sportHi);
    // With the fast path on, one flow's small packets leave from its pool port too.
    const ports = this.out.poolPorts;
    if (ports !== undefined) sport = ports[(sport - o.sportLo) % ports.length];
    let innerTos = 0;
    let innerTtl = 64;
    let innerDf = false;
    if (innerIp >= 0) {
      if (u8[innerIp] >>> 4 === 6) {
        innerTos = ipv6TrafficClass(u8, innerIp);
        innerTtl = u8[innerIp + IPV6_HOP_LIMIT];
      } else {
        innerTos = u8[innerIp + IPV4_TOS];
        innerTtl = u8[innerIp + IPV4_TTL];
        innerDf = ((u8[innerIp + IPV4_FLAGS_FRAG] << 8) & IPV4_DF) !== 0;
      }
    }
    const df = o.df === DfPolicy.Set || (o.df === DfPolicy.Copy && innerDf);
    const total = len + UDP_HDR_LEN + IPV4_HDR_LEN;
    const h = this.outerIp;
    h.tos = o.tos === INHERIT ? innerTos : o.tos;
    h.totalLen = total;
    h.id = s.nextId();
    h.flags = df ? IPV4_DF : 0;
    h.ttl = o.ttl === INHERIT ? innerTtl : o.ttl;
    h.dst = s.curRemote;
    ipv4Write(u8, ipOff, h);
    udpWrite(u8, udpOff, sport, s.curPort, len + UDP_HDR_LEN);
    s.stats.counters[C.encap_packets]++;
    return this.pushOuter(slot, ipOff, total);
  }

  /** Queue a finished outer packet; one over the underlay MTU is cut (too-big.ts). */
  private pushOuter(slot: number, ipOff: number, total: number): number {
    const s = this.s;
    if (total > s.o.underlayMtu) return this.tooBig.fragmentOuter(ipOff, total);
    this.out.push(slot, ipOff, total, s.curRemote);
    return Drop.None;
  }
}
