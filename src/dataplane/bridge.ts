// vxlan-l2: the dataplane as a bridge port on a TAP, like the kernel's vxlan device.
// Frames go to the FDB's remote for their destination MAC, or (unknown unicast,
// broadcast, multicast) to every flood remote; ARP requests and IPv6 neighbour
// solicitations may be answered from the neighbour tables; received frames teach the
// FDB where their source MAC lives.
import { isMulticastMac, readMac } from "../encap/addr.js";
import { ARP_OP_REQUEST, arpParse, arpRequestToReply } from "../encap/arp.js";
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
} from "../encap/ethernet.js";
import {
  ICMP6_HDR_LEN,
  type Icmp6Info,
  IPPROTO_ICMPV6,
  icmp6Parse,
  NDP_NEIGHBOR_SOLICIT,
  type NdpSolicit,
  ndpParseSolicit,
  ndpWriteAdvert,
  newIcmp6Info,
  newNdpSolicit,
} from "../encap/icmp6.js";
import { IPV4_HDR_LEN, ipv4Parse } from "../encap/ipv4.js";
import { IPV6_HDR_LEN, IPV6_NEXT_HEADER, IPV6_SRC, ipv6Parse } from "../encap/ipv6.js";
import { VXLAN_HDR_LEN, VXLAN_L3_HEADROOM, vxlanEncapL2, vxlanWrite } from "../encap/vxlan.js";
import { Learn } from "../fdb/index.js";
import type { Batch } from "../io/batch.js";
import type { DeviceOut } from "./device-out.js";
import { RX_TCP_AT } from "./receive.js";
import type { Sender } from "./send.js";
import type { OffloadSender } from "./send-offload.js";
import type { FwdState } from "./state.js";
import { C } from "./stats.js";
import type { UnderlayOut } from "./underlay-out.js";

export class BridgePort {
  private readonly u8: Uint8Array;
  /** Super-frames: VXLAN header + the frame's Ethernet header. */
  private readonly tpl = new Uint8Array(VXLAN_L3_HEADROOM);
  /** NDP proxy: the parsed ICMPv6 message and solicitation (reused). */
  private readonly icmp6: Icmp6Info = newIcmp6Info();
  private readonly ns: NdpSolicit = newNdpSolicit();

  constructor(
    private readonly s: FwdState,
    private readonly send: Sender,
    private readonly offload: OffloadSender,
    private readonly out: UnderlayOut,
    private readonly dev: DeviceOut,
  ) {
    this.u8 = s.u8;
  }

  /** An Ethernet frame from the TAP. */
  txFrame(slot: number, off: number, len: number): number {
    const s = this.s;
    const eth = s.eth;
    const code = ethernetParse(this.u8, off, len, eth);
    if (code !== Drop.None) return code;
    // A bridge port does not fragment or answer PMTU (neither does the kernel's vxlan).
    if (len - ETH_HDR_LEN > s.o.tunnelMtu) return Drop.TooBig;
    if (isMulticastMac(eth.dst)) {
      if (s.o.proxyArp) {
        const et = eth.ethertype;
        if (et === ETHERTYPE_ARP && this.proxyArp(slot, off, eth)) return Drop.None;
        if (et === ETHERTYPE_IPV6 && this.proxyNdp(slot, off, eth)) return Drop.None;
      }
      return this.flood(slot, off, len, eth);
    }
    const fe = s.fdb.lookup(eth.dst);
    if (fe === undefined) return this.flood(slot, off, len, eth);
    const start = vxlanEncapL2(this.u8, off, fe.vni);
    if (start < 0) return -start;
    s.curRemote = fe.remote | 0;
    s.curPort = fe.port;
    return this.send.pushVxlan(slot, start, len + 8, innerIpOff(eth));
  }

  /**
   * Answer an ARP request from the neighbour table, as the kernel's vxlan `proxy` does,
   * instead of flooding it to every remote. Unlike the kernel (which then drops the
   * request), a miss falls through to flooding so resolution still works without
   * a programmed entry.
   */
  private proxyArp(slot: number, off: number, eth: EthernetInfo): boolean {
    const s = this.s;
    const arp = s.arp;
    if (arpParse(this.u8, eth.payloadOff, eth.payloadLen, arp) !== Drop.None) return false;
    if (arp.op !== ARP_OP_REQUEST) return false;
    const mac = s.neigh.resolve(arp.tpa);
    if (mac < 0 || mac === eth.src) return false;
    arpRequestToReply(this.u8, eth.payloadOff, mac);
    ethernetReplyHeader(this.u8, off, mac);
    this.dev.push(slot, off, eth.payloadOff + 28 - off);
    s.stats.counters[C.arp_proxied]++;
    return true;
  }

  /**
   * Answer an IPv6 neighbour solicitation for an address of the IPv6 neighbour table
   * with its MAC, as the kernel's vxlan `proxy` does (neigh_reduce): the NA is written
   * over the NS in its slot and goes back into the TAP. Not answered (flooded, as a
   * miss is): anything but a valid NS (RFC 4861 §7.1.1, checksum included), and an
   * NS from the table's own owner of the target (its duplicate address detection
   * must not see itself as a duplicate).
   */
  private proxyNdp(slot: number, off: number, eth: EthernetInfo): boolean {
    const s = this.s;
    const u8 = this.u8;
    const ip = eth.payloadOff;
    // Cheap test first: most IPv6 multicast is not NDP. NS carry no extension headers.
    if (eth.payloadLen < IPV6_HDR_LEN + ICMP6_HDR_LEN) return false;
    if (u8[ip + IPV6_NEXT_HEADER] !== IPPROTO_ICMPV6) return false;
    if (u8[ip + IPV6_HDR_LEN] !== NDP_NEIGHBOR_SOLICIT) return false;
    if (ipv6Parse(u8, ip, eth.payloadLen, s.ip6) !== Drop.None) return false;
    const m = this.icmp6;
    if (icmp6Parse(u8, ip, s.ip6.totalLen, m) !== Drop.None) return false;
    const ns = this.ns;
    if (ndpParseSolicit(u8, ip, m, ns) !== Drop.None) return false;
    const mac = s.neigh6.resolve(u8, ns.targetOff);
    if (mac < 0 || mac === eth.src) return false;
    const n = ndpWriteAdvert(u8, ip, u8, ns.targetOff, mac, u8, ip + IPV6_SRC, ns.fromUnspecified);
    ethernetReplyHeader(u8, off, mac);
    this.dev.push(slot, off, ETH_HDR_LEN + n);
    s.stats.counters[C.ndp_proxied]++;
    return true;
  }

  /** Head-end replication to every all-zeros FDB remote; the first copy is the original. */
  private flood(slot: number, off: number, len: number, eth: EthernetInfo): number {
    const s = this.s;
    const o = s.o;
    const remotes = s.fdb.floodList();
    const n = remotes.length;
    if (n === 0) return Drop.NoFdb;
    const innerIp = innerIpOff(eth);
    const slotSize = s.slab.slotSize;
    s.curPort = o.port;
    for (let r = 1; r < n; r++) {
      this.out.room(2);
      const copy = s.takeSlot();
      if (copy < 0) continue;
      const copyOff = copy * slotSize + (off - slot * slotSize);
      this.u8.copyWithin(copyOff, off, off + len);
      const start = vxlanEncapL2(this.u8, copyOff, o.vni);
      const ipOff = innerIp < 0 ? -1 : copyOff + (innerIp - off);
      s.curRemote = remotes[r] | 0;
      this.send.pushVxlan(copy, start, len + 8, ipOff);
      s.stats.counters[C.flood_copies]++;
    }
    const start = vxlanEncapL2(this.u8, off, o.vni);
    s.curRemote = remotes[0] | 0;
    return this.send.pushVxlan(slot, start, len + 8, innerIp);
  }

  /**
   * A TSO/USO super-frame from the TAP: segmented as in send-offload.ts, with the
   * frame's own Ethernet header in every segment, to the FDB's remote for the
   * destination MAC, or to every flood remote (unknown unicast, multicast).
   */
  txSuperFrame(off: number, len: number, gsoSize: number, udp: boolean): number {
    const s = this.s;
    const u8 = this.u8;
    const eth = s.eth;
    const code = ethernetParse(u8, off, len, eth);
    if (code !== Drop.None) return code;
    // TSO/USO super-frames come untagged IPv4 or IPv6: segment headers are VXLAN + 14.
    const v6 = eth.ethertype === ETHERTYPE_IPV6;
    if ((eth.ethertype !== ETHERTYPE_IPV4 && !v6) || eth.payloadOff !== off + ETH_HDR_LEN) {
      return Drop.UnsupportedEthertype;
    }
    const tpl = this.tpl;
    for (let i = 0; i < ETH_HDR_LEN; i++) tpl[VXLAN_HDR_LEN + i] = u8[off + i];
    s.curTpl = tpl;
    s.curMtu = s.o.tunnelMtu;
    const ipOff = off + ETH_HDR_LEN;
    const ipLen = len - ETH_HDR_LEN;
    const fe = isMulticastMac(eth.dst) ? undefined : s.fdb.lookup(eth.dst);
    if (fe !== undefined) {
      vxlanWrite(tpl, 0, fe.vni);
      s.curRemote = fe.remote | 0;
      s.curPort = fe.port;
      return this.offload.txSuper(ipOff, ipLen, gsoSize, udp, true);
    }
    const remotes = s.fdb.floodList();
    const n = remotes.length;
    if (n === 0) return Drop.NoFdb;
    vxlanWrite(tpl, 0, s.o.vni);
    s.curPort = s.o.port;
    for (let r = 0; r < n; r++) {
      s.curRemote = remotes[r] | 0;
      // Each copy is segmented again; the super-frame is counted once (copy: r > 0).
      const c = this.offload.txSuper(ipOff, ipLen, gsoSize, udp, true, r > 0);
      if (c !== Drop.None) return c;
      if (r > 0) s.stats.counters[C.flood_copies]++;
    }
    return Drop.None;
  }

  /**
   * The frame behind the VXLAN header just parsed into s.vx / s.eth (receive.ts).
   * `b`, `idx`: the datagram in the underlay batch (its source address is read only
   * for learning: an address above 2^31 passed per call would be boxed). `pre`: the
   * inner TCP sum when known (see receive.ts), else -1.
   */
  rxFrame(b: Batch, idx: number, off: number, len: number, pre: number): number {
    const s = this.s;
    const slot = b.slot[idx];
    const vx = s.vx;
    const eth = s.eth;
    const c = s.stats.counters;
    if (s.o.learning) {
      const from = b.addr[idx];
      const mac = readMac(this.u8, vx.innerOff + ETH_SRC);
      const learned = s.fdb.learn(mac, from);
      if (learned === Learn.StaticConflict) return Drop.FdbStaticConflict;
      if (learned === Learn.Created || learned === Learn.Moved) {
        if (s.onLearn !== undefined) s.onLearn(mac, from, learned === Learn.Created);
        else if (learned === Learn.Created) c[C.fdb_learned]++;
      }
    }
    const coal = this.dev.coal;
    const ipOff = eth.payloadOff;
    c[C.decap_packets]++;
    // An untagged IPv4 or IPv6 packet may join a coalesced write (the coalescer checks
    // the rest); a bridge port passes everything else (even a malformed IPv4 packet)
    // on as it came.
    if (coal !== undefined && ipOff === vx.innerOff + ETH_HDR_LEN) {
      if (eth.ethertype === ETHERTYPE_IPV4) {
        if (ipv4Parse(this.u8, ipOff, eth.payloadLen, s.ip) === Drop.None) {
          const total = s.ip.totalLen;
          const known = ipOff + IPV4_HDR_LEN === off + RX_TCP_AT && ipOff + total === off + len;
          if (coal.add(slot, ipOff, total, known ? pre : -1)) return Drop.None;
        }
      } else if (eth.ethertype === ETHERTYPE_IPV6) {
        // ipOff + 20 is off + RX_TCP_AT here (untagged), where `pre` was summed from.
        const known = ipOff + eth.payloadLen === off + len;
        if (this.dev.add6(slot, ipOff, eth.payloadLen, known ? pre : -1)) return Drop.None;
      }
    }
    this.dev.push(slot, vx.innerOff, vx.innerLen);
    return Drop.None;
  }
}

function innerIpOff(eth: EthernetInfo): number {
  return eth.ethertype === ETHERTYPE_IPV4 ? eth.payloadOff : -1;
}
