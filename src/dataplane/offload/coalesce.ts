// Receive coalescing (the software half of GRO, after Linux's tcp_gro_receive and
// wireguard-go's tun/offload_linux.go): in-order TCP segments of one flow, decapsulated
// from the underlay, are merged into one super-packet and written to the TUN once, with
// a virtio_net_hdr saying "TCPv4, gso_size N, checksum partial". The kernel's TCP then
// sees one big segment, as it would after GRO on a NIC.
//
// Merging moves no payload: the group is a list of slab ranges (the first segment with
// its headers and a virtio_net_hdr in front, then each later segment's payload where
// its datagram landed) that the device writes with one writev(). A segment joins the
// open group only when it continues it exactly: same addresses, ports, TOS, TTL, DF,
// ACK number, TCP header length and options; next sequence number; no flag but
// ACK/PSH; payload no larger than the first one's (gso_size). A shorter segment or PSH
// ends the group. Each segment's TCP checksum is verified before it is merged (the
// addon sums; a bad one is handed back to the caller, written alone and left to the
// kernel to count). Nothing is allocated.
//
// On a TAP (vxlan-l2) each segment is an Ethernet frame: the group also requires the
// same MAC addresses, keeps the first frame's Ethernet header, and its virtio_net_hdr
// is a range of its own (`vnetScratch`): a frame follows its 8-byte VXLAN header
// directly, so the 10 bytes in front of it may be the tail of the previous datagram
// of a GRO batch, still waiting to be written. IPv6 (a bridge's frames on a TAP;
// routed IPv6 pods on a TUN that took TSO6): segments of one IPv6 TCP flow (no
// extension headers) merge the same way, into a TCPv6 write (same traffic class, flow
// label and hop limit instead of TOS, TTL and DF).
//
// UDP, where the device took USO4|USO6 (the kernels that take a UDP_L4 GSO write):
// datagrams of one flow (IPv4, and IPv6 where IPv6 merges) merge the way Linux's UDP GRO
// merges them, all of the first one's size but a shorter last, into one write with
// gso_type UDP_L4 and gso_size that size. The kernel forwards it as one packet and
// cuts it back into the same datagrams where it must (before a device or socket that
// does not take it whole), so a receiver sees the sender's datagram boundaries; a
// socket with UDP_GRO on gets the run in one read. Order is kept: any other packet
// ends the open group first.
import { read16, read32, write16 } from "../../encap/bytes.js";
import { checksumFold } from "../../encap/checksum.js";
import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_FLAGS_FRAG,
  IPV4_PROTOCOL,
  IPV4_SRC,
  IPV4_TOS,
  IPV4_TOTAL_LEN,
  IPV4_TTL,
  ipv4FillChecksum,
  ipv4PseudoHeaderSum,
} from "../../encap/ipv4.js";
import {
  IPV6_HDR_LEN,
  IPV6_HOP_LIMIT,
  IPV6_NEXT_HEADER,
  IPV6_PAYLOAD_LEN,
  ipv6PseudoHeaderSum,
} from "../../encap/ipv6.js";
import {
  TCP_ACK,
  TCP_CHECKSUM,
  TCP_DATA_OFF,
  TCP_FLAGS,
  TCP_SEQ,
  TCP_WINDOW,
} from "../../encap/tcp.js";
import { UDP_CHECKSUM, UDP_HDR_LEN, UDP_LENGTH } from "../../encap/udp.js";
import {
  newVnetHeader,
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_LEN,
  type VnetHeader,
  vnetWrite,
  vnetWritePlain,
} from "../../tun/vnet.js";
import { type Summer, tcpChecksumOk } from "./segment.js";

const TCP_ACK_FLAG = 0x10;
const TCP_PSH = 0x08;
const IP_MAX = 65535;

function same32(u8: Uint8Array, a: number, b: number): boolean {
  return (
    u8[a] === u8[b] && u8[a + 1] === u8[b + 1] && u8[a + 2] === u8[b + 2] && u8[a + 3] === u8[b + 3]
  );
}

/**
 * `sum` (a sum of 16-bit words from `at` on) without the 20 bytes [at, at+20), in
 * one's complement arithmetic: subtracting is adding the complement.
 */
function unsum20(u8: Uint8Array, at: number, sum: number): number {
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (u8[at + i] << 8) | u8[at + i + 1];
  return checksumFold(checksumFold(sum) + (~checksumFold(s) & 0xffff));
}

/** Most segments in one group (and ranges in its gather list). */
export const MAX_GROUP_SEGMENTS = 64;

/** Where finished packets go; each starts with a virtio_net_hdr. */
export interface VnetSink {
  /** One packet: slab[off, off+len). */
  deviceVnet(slot: number, off: number, len: number): void;
  /** One packet glued from slab ranges [offs[i], offs[i]+lens[i]) for i < count. */
  deviceVnetGather(slot: number, offs: Uint32Array, lens: Uint32Array, count: number): void;
  /** VNET_LEN bytes of the slab that stay ours until the batch is written; -1: none. */
  vnetScratch(): number;
}

export class Coalescer {
  /** Device writes that carried more than one TCP segment, and the segments in them. */
  mergedWrites = 0;
  mergedSegments = 0;
  /** The same for UDP (USO writes), and the datagrams in them. */
  mergedUdpWrites = 0;
  mergedUdpDatagrams = 0;
  /** Segments or datagrams refused because their TCP or UDP checksum was wrong. */
  badChecksum = 0;

  private open = false;
  private gSlot = 0;
  private gIp = 0;
  private gThl = 0;
  /** The group's IP header length: 20 (IPv4) or 40 (IPv6). */
  private gL3 = 0;
  private gLen = 0;
  private gGso = 0;
  /**
   * The group's ranges: [0] = vnet header + first segment (L3), or [0] = vnet header
   * and [1] = first frame (L2); then later payloads.
   */
  private readonly fOff = new Uint32Array(MAX_GROUP_SEGMENTS + 1);
  private readonly fLen = new Uint32Array(MAX_GROUP_SEGMENTS + 1);
  /** Ranges before the first payload of a later segment: 1 (L3) or 2 (L2). */
  private readonly lead: number;
  private gSegs = 0;
  private gNextSeq = 0;
  private gDone = false;
  /** The open group is UDP datagrams (gThl is then the UDP header's 8 bytes). */
  private gUdp = false;
  /** The merged write's virtio_net_hdr, filled per write. */
  private readonly vh: VnetHeader = newVnetHeader();

  constructor(
    private readonly u8: Uint8Array,
    private readonly summer: Summer,
    private readonly sink: VnetSink,
    /** Bytes of link-layer header in front of each IPv4 packet: 0 (TUN) or 14 (TAP). */
    private readonly l2 = 0,
    /**
     * Merge UDP datagrams too into UDP_L4 GSO writes: only where the device took
     * USO4|USO6, the same kernels that take such a write.
     */
    private readonly udp = false,
    /**
     * Merge IPv6 too (TCPv6 writes): a TAP (a bridge carries IPv6) or a TUN that took
     * TSO6 (the L3 modes' routed IPv6 pods).
     */
    private readonly ip6 = l2 > 0,
  ) {
    this.lead = l2 > 0 ? 2 : 1;
  }

  /**
   * Offer the IPv4 packet [ip, ip+len) of `slot` (`len` is its total length, header
   * checksum already verified; VNET_LEN bytes in front of it are free), or an IPv6 one
   * (`len`: 40 + its payload length) where IPv6 merges. True: it was
   * taken and reaches the sink, merged or not; its bytes must stay put until the sink
   * has written it. False: not a mergeable TCP segment; the caller must flush() and
   * write it itself. `pre`: the sum of [ip+20, ip+len) when the caller already has it
   * (sumMany over a GRO datagram), for IPv6 too (summed where an IPv4 header would end).
   */
  add(slot: number, ip: number, len: number, pre = -1): boolean {
    const u8 = this.u8;
    let l3 = 20;
    if (u8[ip] === 0x45) {
      if ((read16(u8, ip + IPV4_FLAGS_FRAG) & 0x3fff) !== 0) return false;
      const proto = u8[ip + IPV4_PROTOCOL];
      if (proto !== IPPROTO_TCP)
        return proto === IPPROTO_UDP && this.udp && this.addUdp(slot, ip, len, pre);
    } else if (u8[ip] >>> 4 === 6 && this.ip6) {
      if (len < IPV6_HDR_LEN) return false;
      // The caller summed from where a 20-byte IPv4 header would end: take the IPv6
      // header's last 20 bytes back out (cheaper than another addon call).
      if (pre >= 0) pre = unsum20(u8, ip + 20, pre);
      const next = u8[ip + IPV6_NEXT_HEADER];
      if (next !== IPPROTO_TCP)
        return next === IPPROTO_UDP && this.udp && this.addUdp(slot, ip, len, pre);
      if (read16(u8, ip + IPV6_PAYLOAD_LEN) !== len - IPV6_HDR_LEN) return false;
      l3 = IPV6_HDR_LEN;
    } else {
      return false;
    }
    if (len < l3 + 20) return false;
    const tcp = ip + l3;
    const thl = (u8[tcp + TCP_DATA_OFF] >>> 4) * 4;
    if (thl < 20 || l3 + thl >= len) return false; // no payload: pure ACKs go alone
    const flags = u8[tcp + TCP_FLAGS];
    if ((flags & ~TCP_PSH) !== TCP_ACK_FLAG) return false;
    if (!tcpChecksumOk(u8, ip, this.summer, pre)) {
      this.badChecksum++;
      return false;
    }
    const pay = tcp + thl;
    const plen = len - l3 - thl;
    // int32 (not >>> 0): a Smi-range value is never boxed when passed or stored.
    const seq = read32(u8, tcp + TCP_SEQ) | 0;
    if (this.open && !this.gUdp && this.continues(ip, l3, thl, seq, plen)) {
      const g = this.gIp + l3;
      const win = read16(u8, tcp + TCP_WINDOW);
      const r = this.gSegs + this.lead - 1;
      this.fOff[r] = pay;
      this.fLen[r] = plen;
      this.gLen += plen;
      this.gNextSeq = (this.gNextSeq + plen) | 0;
      this.gSegs++;
      write16(u8, g + TCP_WINDOW, win);
      if (flags & TCP_PSH) u8[g + TCP_FLAGS] |= TCP_PSH;
      if (plen < this.gGso || flags & TCP_PSH) this.gDone = true;
      if (this.gDone) this.flush();
      return true;
    }
    if (!this.start(slot, ip, len, l3, thl, plen, false)) return false;
    this.gNextSeq = (seq + plen) | 0;
    this.gDone = (flags & TCP_PSH) !== 0;
    if (this.gDone) this.flush();
    return true;
  }

  /**
   * A UDP datagram: IPv4 (no options, not a fragment) or IPv6 (no extension
   * headers). Merged the way Linux's UDP GRO merges (udp_gro_receive_segment): same
   * addresses, ports and TOS, TTL and DF (IPv6: traffic class, flow label and hop
   * limit) as the group's first, a payload of the first one's size, a shorter one
   * ending the group. A datagram without a checksum (0, IPv4 allows it) goes alone, as
   * GRO leaves it alone, for it has nothing we could verify before the kernel's
   * segmentation writes a checksum into every datagram.
   */
  private addUdp(slot: number, ip: number, len: number, pre: number): boolean {
    const u8 = this.u8;
    const l3 = u8[ip] === 0x45 ? 20 : IPV6_HDR_LEN;
    const udp = ip + l3;
    const l4 = len - l3;
    if (l4 <= UDP_HDR_LEN || read16(u8, udp + UDP_LENGTH) !== l4) return false;
    if (l3 === IPV6_HDR_LEN && read16(u8, ip + IPV6_PAYLOAD_LEN) !== l4) return false;
    if (read16(u8, udp + UDP_CHECKSUM) === 0) return false;
    const body = pre >= 0 ? pre : this.summer.sum(udp, l4);
    const pseudo =
      l3 === 20
        ? ipv4PseudoHeaderSum(u8, ip, IPPROTO_UDP, l4)
        : ipv6PseudoHeaderSum(u8, ip, IPPROTO_UDP, l4);
    if (checksumFold(body + pseudo) !== 0xffff) {
      this.badChecksum++;
      return false;
    }
    const plen = l4 - UDP_HDR_LEN;
    if (this.open && this.gUdp && this.sameFlow(ip, l3, plen)) {
      const r = this.gSegs + this.lead - 1;
      this.fOff[r] = udp + UDP_HDR_LEN;
      this.fLen[r] = plen;
      this.gLen += plen;
      this.gSegs++;
      if (plen < this.gGso) {
        this.gDone = true;
        this.flush();
      }
      return true;
    }
    if (!this.start(slot, ip, len, l3, UDP_HDR_LEN, plen, true)) return false;
    this.gDone = false;
    return true;
  }

  /** Open a group with the packet [ip, ip+len) (after flushing the open one). */
  private start(
    slot: number,
    ip: number,
    len: number,
    l3: number,
    l4hdr: number,
    plen: number,
    udp: boolean,
  ): boolean {
    this.flush();
    if (this.l2 > 0) {
      const h = this.sink.vnetScratch();
      if (h < 0) return false;
      this.fOff[0] = h;
      this.fLen[0] = VNET_LEN;
      this.fOff[1] = ip - this.l2;
      this.fLen[1] = this.l2 + len;
    } else {
      this.fOff[0] = ip - VNET_LEN;
      this.fLen[0] = VNET_LEN + len;
    }
    this.open = true;
    this.gUdp = udp;
    this.gSlot = slot;
    this.gIp = ip;
    this.gThl = l4hdr;
    this.gL3 = l3;
    this.gLen = len;
    this.gGso = plen;
    this.gSegs = 1;
    return true;
  }

  /**
   * Whether a packet may join the open group as far as TCP and UDP agree: room left,
   * no larger than the first, the same IP header fields (IPv4: TOS, TTL, DF and
   * addresses; IPv6: version, traffic class, flow label, hop limit and addresses), the
   * same ports and, on a TAP, the same MAC addresses.
   */
  private sameFlow(ip: number, l3: number, plen: number): boolean {
    const u8 = this.u8;
    const g = this.gIp;
    if (this.gDone || plen > this.gGso || l3 !== this.gL3) return false;
    if (this.gSegs >= MAX_GROUP_SEGMENTS || this.gLen + plen > IP_MAX) return false;
    if (l3 === 20) {
      if (u8[ip + IPV4_TOS] !== u8[g + IPV4_TOS] || u8[ip + IPV4_TTL] !== u8[g + IPV4_TTL]) {
        return false;
      }
      if (u8[ip + IPV4_FLAGS_FRAG] !== u8[g + IPV4_FLAGS_FRAG]) return false;
      // Addresses (bytes 12-19: src, dst).
      if (!same32(u8, ip + IPV4_SRC, g + IPV4_SRC)) return false;
      if (!same32(u8, ip + IPV4_SRC + 4, g + IPV4_SRC + 4)) return false;
    } else {
      // Version, traffic class and flow label (bytes 0-3), hop limit, addresses (8-39).
      if (!same32(u8, ip, g) || u8[ip + IPV6_HOP_LIMIT] !== u8[g + IPV6_HOP_LIMIT]) return false;
      for (let i = 8; i < IPV6_HDR_LEN; i += 4) if (!same32(u8, ip + i, g + i)) return false;
    }
    // Ports (the first 4 bytes of TCP and UDP alike).
    if (!same32(u8, ip + l3, g + l3)) return false;
    // L2: the same destination and source MACs (12 bytes; the EtherType follows from
    // the IP version, compared above).
    const l2 = this.l2;
    for (let i = l2; i > 2; i -= 4) if (!same32(u8, ip - i, g - i)) return false;
    return true;
  }

  private continues(ip: number, l3: number, thl: number, seq: number, plen: number): boolean {
    if (seq !== this.gNextSeq || thl !== this.gThl) return false;
    if (!this.sameFlow(ip, l3, plen)) return false;
    const u8 = this.u8;
    const g = this.gIp;
    // The ACK number (TCP bytes 8-11) and the TCP options (20..thl), 4 bytes at a time.
    const t = ip + l3;
    const gt = g + l3;
    if (!same32(u8, t + TCP_ACK, gt + TCP_ACK)) return false;
    for (let i = 20; i < thl; i += 4) if (!same32(u8, t + i, gt + i)) return false;
    return true;
  }

  /** Hand the open group (if any) to the sink. */
  flush(): void {
    if (!this.open) return;
    this.open = false;
    const u8 = this.u8;
    const ip = this.gIp;
    const l2 = this.l2;
    const at = this.fOff[0];
    const ranges = this.gSegs + this.lead - 1;
    if (this.gSegs === 1) {
      // Verified above: spare the kernel a second pass.
      vnetWritePlain(u8, at, VNET_F_DATA_VALID);
      if (l2 > 0) this.sink.deviceVnetGather(this.gSlot, this.fOff, this.fLen, ranges);
      else this.sink.deviceVnet(this.gSlot, at, this.gLen + VNET_LEN);
      return;
    }
    const l3 = this.gL3;
    const l4 = this.gLen - l3;
    const udp = this.gUdp;
    const proto = udp ? IPPROTO_UDP : IPPROTO_TCP;
    let pseudo: number;
    if (l3 === 20) {
      write16(u8, ip + IPV4_TOTAL_LEN, this.gLen);
      ipv4FillChecksum(u8, ip);
      pseudo = ipv4PseudoHeaderSum(u8, ip, proto, l4);
    } else {
      write16(u8, ip + IPV6_PAYLOAD_LEN, l4);
      pseudo = ipv6PseudoHeaderSum(u8, ip, proto, l4);
    }
    if (udp) write16(u8, ip + l3 + UDP_LENGTH, l4);
    // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum (not complemented),
    // which the kernel's segmentation adjusts to each segment's length and completes.
    const csum = udp ? UDP_CHECKSUM : TCP_CHECKSUM;
    write16(u8, ip + l3 + csum, checksumFold(pseudo));
    const h = this.vh;
    h.flags = VNET_F_NEEDS_CSUM;
    h.gsoType = udp ? VNET_GSO_UDP_L4 : l3 === 20 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6;
    // (A UDP group's gThl is its 8-byte header.)
    h.hdrLen = l2 + l3 + this.gThl;
    h.gsoSize = this.gGso;
    h.csumStart = l2 + l3;
    h.csumOffset = csum;
    vnetWrite(u8, at, h);
    if (udp) {
      this.mergedUdpWrites++;
      this.mergedUdpDatagrams += this.gSegs;
    } else {
      this.mergedWrites++;
      this.mergedSegments += this.gSegs;
    }
    this.sink.deviceVnetGather(this.gSlot, this.fOff, this.fLen, ranges);
  }
}
