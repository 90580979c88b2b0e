// Device -> underlay on the offload fast path (io.offload, see offload/fastpath.ts):
// the TUN/TAP hands over TCP (TSO) and UDP (USO) super-packets behind a virtio_net_hdr.
// Each is cut into segments (offload/segment.ts) whose header blocks go to the batch's
// header arena while the payload stays in place; each segment is encapsulated and the
// run leaves as UDP_SEGMENT messages on the flow's pool socket (vxlan modes) or as
// gathered raw packets (ipip). Everything else (small packets, ICMP, fragments) takes
// send.ts, so DF/PMTU handling is unchanged.
import { read16, write16 } from "../encap/bytes.js";
import { Drop } from "../encap/drop.js";
import { ETHERTYPE_IPV6 } from "../encap/ethernet.js";
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_HDR_LEN, ipv4Parse } from "../encap/ipv4.js";
import {
  IPV6_HDR_LEN,
  IPV6_HOP_LIMIT,
  IPV6_PAYLOAD_LEN,
  ipv6TrafficClass,
  ipv6UpperOffset,
} from "../encap/ipv6.js";
import { VXLAN_HDR_LEN, VXLAN_L3_HEADROOM, vxlanSourcePort } from "../encap/vxlan.js";
import type { Batch } from "../io/batch.js";
import { type GsoBatch, UDP_MAX_PAYLOAD, UDP_MAX_SEGMENTS } from "../io/gso-batch.js";
import type { VnetHeader } from "../tun/vnet.js";
import {
  completeChecksum,
  superSegment,
  tsoHeaderLen,
  tsoPayloadLen,
  tsoPayloadOff,
  usoHeaderLen,
} from "./offload/segment.js";
import type { Sender } from "./send.js";
import { type FwdState, INHERIT } from "./state.js";
import { C } from "./stats.js";
import type { UnderlayOut } from "./underlay-out.js";

/** Inner Ethernet + VXLAN in front of each segment. */
const SEG_PREFIX = VXLAN_L3_HEADROOM;

/** The super-packet being segmented: what its IPv4 or IPv6 header says, and the cut. */
class Super {
  totalLen = 0;
  tos = 0;
  ttl = 0;
  /** IPv4 DF (IPv6: false, a bridge cuts smaller). */
  df = false;
  /** An IPv6 packet routed from the TUN: the L3 template's ethertype is patched. */
  routed6 = false;
  /** IP + L4 header bytes, copied into every segment. */
  hdr = 0;
  /** Payload bytes per segment (the last may be shorter). */
  mss = 0;
}

export class OffloadSender {
  private readonly u8: Uint8Array;
  private readonly head = new Super();

  constructor(
    private readonly s: FwdState,
    private readonly out: UnderlayOut,
    private readonly send: Sender,
  ) {
    this.u8 = s.u8;
  }

  /**
   * A packet that is not a super-packet whose virtio_net_hdr asks for its checksum
   * (NEEDS_CSUM): finish it. False when the header points outside the packet.
   */
  completeChecksum(off: number, len: number, h: VnetHeader): boolean {
    return completeChecksum(this.u8, off, len, h.csumStart, h.csumOffset, this.s.fast!.summer);
  }

  /**
   * A TSO (TCP) or USO (UDP) super-packet: segment it (TCP at the MSS or the route's
   * smaller MTU; UDP at the sender's datagram size, which cannot change), encapsulate
   * each segment and queue them as UDP_SEGMENT messages on the flow's pool socket.
   * `bridged`: vxlan-l2, destination and template already set (bridge.ts); a bridge
   * port sends no ICMP, so a DF segment too big for the tunnel is cut smaller. IPv6:
   * a bridged super-frame, or a routed USO6 run. `copy`: a flood copy of one already
   * counted.
   */
  txSuper(
    off: number,
    len: number,
    gsoSize: number,
    udp: boolean,
    bridged: boolean,
    copy = false,
  ): number {
    const s = this.s;
    const u8 = this.u8;
    const head = this.head;
    // IPv6: a bridged frame's, or a TSO6/USO6 run routed from the TUN.
    const v6 = len >= IPV6_HDR_LEN && u8[off] >>> 4 === 6;
    if (v6) {
      head.totalLen = IPV6_HDR_LEN + read16(u8, off + IPV6_PAYLOAD_LEN);
      if (head.totalLen > len) return Drop.Ipv6Truncated;
      head.tos = ipv6TrafficClass(u8, off);
      head.ttl = u8[off + IPV6_HOP_LIMIT];
      head.df = false;
    } else {
      const ip = s.ip;
      const code = ipv4Parse(u8, off, len, ip);
      if (code !== Drop.None) return code;
      head.totalLen = ip.totalLen;
      head.tos = ip.tos;
      head.ttl = ip.ttl;
      head.df = ip.df;
    }
    const total = head.totalLen;
    const hdr = udp ? usoHeaderLen(u8, off, total) : tsoHeaderLen(u8, off, total);
    if (hdr === 0) {
      const l4 = udp ? IPPROTO_UDP : IPPROTO_TCP;
      if (v6 && ipv6UpperOffset(u8, off, total, l4) === 0) return Drop.Ipv6ExtUnsupported;
      return udp ? Drop.UdpTruncated : Drop.TcpBadOffset;
    }
    if (!bridged) {
      const code = v6 ? this.send.resolve6(off) : this.send.resolve();
      if (code !== Drop.None) return code;
    }
    let mss = gsoSize;
    if (mss <= 0) return Drop.VnetBadGsoSize;
    // PMTU applies per segment: each is hdr + mss bytes of inner IP.
    if (hdr + mss > s.curMtu) {
      // A routed IPv6 datagram is never cut on the way: its sender learns the MTU.
      if (v6 && !bridged) {
        this.send.tooBig.packetTooBig(off, total, s.curMtu, s.curRoute6!);
        return Drop.TooBig;
      }
      if (head.df && !bridged) {
        this.send.tooBig.fragNeeded(off, total, s.curMtu, s.curFrom);
        return Drop.TooBig;
      }
      // A UDP segment is a datagram of its sender's: it cannot be cut smaller.
      if (udp) return Drop.TooBig;
      mss = s.curMtu - hdr;
      if (mss < 8) return Drop.TooBig;
    }
    head.hdr = hdr;
    head.mss = mss;
    head.routed6 = v6 && !bridged;
    if (this.out.ipipOut !== undefined) return this.txSuperIpip(off, udp);
    return this.txSuperVxlan(off, udp, copy);
  }

  /** vxlan modes: the segments as UDP_SEGMENT messages on the flow's pool socket. */
  private txSuperVxlan(off: number, udp: boolean, copy: boolean): number {
    const s = this.s;
    const o = s.o;
    const u8 = this.u8;
    const out = this.out;
    const pool = out.pool!;
    const summer = s.fast!.summer;
    const head = this.head;
    const total = head.totalLen;
    const hdr = head.hdr;
    const mss = head.mss;
    const payload = total - hdr;
    const segs = Math.ceil(payload / mss);
    const hs = SEG_PREFIX + hdr;
    const tos = o.tos === INHERIT ? head.tos : o.tos;
    const ttl = o.ttl === INHERIT ? head.ttl : o.ttl;
    const meta = ((tos & 0xff) << 8) | (ttl & 0xff);
    const segSize = hs + mss;
    let perMsg = 1;
    if (s.fast!.udpSegment) {
      perMsg = Math.floor(UDP_MAX_PAYLOAD / segSize);
      if (perMsg > UDP_MAX_SEGMENTS) perMsg = UDP_MAX_SEGMENTS;
      if (perMsg < 1) perMsg = 1;
    }
    let k = 0;
    // Header blocks go to the batch's header arena, in rounds of whole messages.
    const fit = Math.floor((s.slab.slotSize - s.slab.headroom) / hs);
    const round = fit >= perMsg ? fit - (fit % perMsg) : fit;
    if (round < 1) return Drop.TooBig;
    for (let first = 0; first < segs; first += round) {
      const n = Math.min(round, segs - first);
      const at = s.headerSpace(n * hs);
      if (at < 0) return Drop.PoolExhausted;
      const tpl = s.curTpl;
      for (let i = 0; i < SEG_PREFIX; i++) u8[at + i] = tpl[i];
      // The route's template says IPv4 (vxlanEncapL3Template patches it per packet).
      if (head.routed6) write16(u8, at + SEG_PREFIX - 2, ETHERTYPE_IPV6);
      const made = superSegment(u8, udp, off, total, hdr, mss, at, SEG_PREFIX, summer, first, n);
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
      for (let j = 0; j < n; ) {
        // Top up the socket's last message first: the previous super-packet of this
        // flow often ends in a short run (44 + 1 segments at MTU 1450 for 64 KiB).
        let m = out.poolRoom(k, segSize, meta, perMsg);
        let batch: GsoBatch;
        if (m > 0) {
          if (m > n - j) m = n - j;
          batch = pool.batches[k];
          batch.gso[batch.count - 1] = segSize;
        } else {
          m = Math.min(perMsg, n - j);
          batch = out.poolMessage(k, m > 1 ? segSize : 0, meta, 2 * m);
        }
        for (let i = j; i < j + m; i++)
          addSegment(batch, at + i * hs, hs, off, hdr, mss, payload, first + i);
        j += m;
      }
    }
    this.countSegmented(udp, segs, copy);
    return Drop.None;
  }

  /**
   * ipip: the segments of a super-packet as header-included raw packets, one message of
   * two ranges each (outer IPv4 + inner headers from the header arena, payload in
   * place). A raw socket has no UDP_SEGMENT: one sendmmsg carries a batch of them.
   */
  private txSuperIpip(off: number, udp: boolean): number {
    const s = this.s;
    const u8 = this.u8;
    const { totalLen: total, hdr, mss } = this.head;
    const summer = s.fast!.summer;
    const outer = this.send.ipipSegmentHeader(off, hdr + mss);
    if (outer < 0) return -outer;
    const payload = total - hdr;
    const segs = Math.ceil(payload / mss);
    const hs = IPV4_HDR_LEN + hdr;
    const fit = Math.floor((s.slab.slotSize - s.slab.headroom) / hs);
    for (let first = 0; first < segs; first += fit) {
      const n = Math.min(fit, segs - first);
      const at = s.headerSpace(n * hs);
      if (at < 0) return Drop.PoolExhausted;
      for (let i = 0; i < IPV4_HDR_LEN; i++) u8[at + i] = u8[outer + i];
      const made = superSegment(u8, udp, off, total, hdr, mss, at, IPV4_HDR_LEN, summer, first, n);
      if (made !== n) return udp ? Drop.UdpTruncated : Drop.TcpTruncated;
      for (let j = 0; j < n; j++) {
        const b = this.out.ipipMessage();
        addSegment(b, at + j * hs, hs, off, hdr, mss, payload, first + j);
      }
    }
    this.countSegmented(udp, segs, false);
    return Drop.None;
  }

  /** `copy`: a flood copy of a super-packet already counted (only its segments count). */
  private countSegmented(udp: boolean, segs: number, copy: boolean): void {
    const c = this.s.stats.counters;
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
}

/** Segment k of a gathered message: its header block, then its payload in place. */
function addSegment(
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
