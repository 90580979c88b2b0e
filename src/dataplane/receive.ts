// Underlay -> device: a batch of UDP payloads (VXLAN) or whole IPv4 packets (IPIP, as
// the raw socket hands them over) is validated and decapsulated in place, and each
// inner packet goes to the device (device-out.ts), where the fast path merges a flow's
// in-order segments into one GSO write. UDP_GRO datagrams (several segments of one
// flow in one read) are split at their segment size first.
import { Drop } from "../encap/drop.js";
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, ethernetParse } from "../encap/ethernet.js";
import { ipipDecap, sitDecap } from "../encap/ipip.js";
import { IPV4_HDR_LEN, ipv4Parse } from "../encap/ipv4.js";
import { ipv6Parse } from "../encap/ipv6.js";
import { VXLAN_L3_HEADROOM, vxlanDecap } from "../encap/vxlan.js";
import type { Batch } from "../io/batch.js";
import type { BridgePort } from "./bridge.js";
import type { DeviceOut } from "./device-out.js";
import { SUM_MANY } from "./offload/segment.js";
import type { FwdState } from "./state.js";
import { C } from "./stats.js";

/** Where a received VXLAN segment's inner TCP header usually starts (no VLAN, no IP options). */
export const RX_TCP_AT = VXLAN_L3_HEADROOM + IPV4_HDR_LEN;
/** The same for an IPIP packet as the raw socket hands it over: outer + inner IPv4. */
const IPIP_TCP_AT = 2 * IPV4_HDR_LEN;

export class Receiver {
  private readonly u8: Uint8Array;
  private readonly allow: Set<number> | undefined;
  /** Per-datagram TCP sums of the batch being handled (-1: none). */
  private readonly batchPre = new Int32Array(SUM_MANY);

  constructor(
    private readonly s: FwdState,
    private readonly bridge: BridgePort,
    private readonly dev: DeviceOut,
  ) {
    this.u8 = s.u8;
    const allow = s.o.allowPeers;
    this.allow = allow.length ? new Set(allow) : undefined;
  }

  /** A batch from the underlay socket, up to the device writes (flushed by the caller). */
  batch(b: Batch): void {
    const s = this.s;
    const c = s.stats.counters;
    c[C.underlay_rx_batches]++;
    const n = b.count;
    const dev = this.dev.b;
    const rxGso = s.fast?.rxGso;
    const npre = this.presum(b, rxGso);
    const pre = this.batchPre;
    for (let i = 0; i < n; i++) {
      c[C.underlay_rx_packets]++;
      c[C.underlay_rx_bytes] += b.len[i];
      if (this.allow !== undefined && !this.allow.has(b.addr[i])) {
        s.drop(Drop.PeerNotAllowed);
        continue;
      }
      const gso = rxGso !== undefined ? rxGso[i] : 0;
      if (gso > 0 && b.len[i] > gso) {
        this.groDatagram(b, i, gso);
        continue;
      }
      const code = s.ipip
        ? this.rxIpip(b.slot[i], b.off[i], b.len[i], i < npre ? pre[i] : -1)
        : this.rxVxlan(b, i, b.off[i], b.len[i], i < npre ? pre[i] : -1);
      if (code !== Drop.None) s.drop(code);
      if (dev.count === dev.capacity) this.dev.flush();
    }
  }

  /**
   * Coalescing verifies every TCP segment's checksum: sum the datagrams that are
   * single segments in one addon call (the call costs as much as summing 1 KB) into
   * batchPre. Returns how many were summed.
   */
  private presum(b: Batch, rxGso: Uint16Array | undefined): number {
    const fast = this.s.fast;
    if (fast === undefined) return 0;
    const summer = fast.summer;
    const at = this.s.ipip ? IPIP_TCP_AT : RX_TCP_AT;
    const npre = Math.min(b.count, SUM_MANY);
    for (let i = 0; i < npre; i++) {
      const len = b.len[i];
      const single = len > at && (rxGso === undefined || rxGso[i] === 0 || len <= rxGso[i]);
      summer.offs[i] = b.off[i] + at;
      summer.lens[i] = single ? len - at : 0;
    }
    summer.sumMany(npre);
    const pre = this.batchPre;
    for (let i = 0; i < npre; i++) pre[i] = summer.lens[i] > 0 ? summer.out[i] : -1;
    return npre;
  }

  /** UDP_GRO: several datagrams of one flow in datagram i, each `gso` bytes but the last. */
  private groDatagram(b: Batch, i: number, gso: number): void {
    const s = this.s;
    const c = s.stats.counters;
    const off = b.off[i];
    const end = off + b.len[i];
    c[C.gro_datagrams]++;
    // Inner TCP sums of every segment in one addon call, assuming the usual layout
    // (VXLAN + Ethernet + 20-byte IPv4); rxVxlan uses one only where that holds.
    const summer = s.fast!.summer;
    let m = 0;
    for (let at = off; at < end && m < SUM_MANY; at += gso, m++) {
      const segLen = Math.min(end - at, gso);
      summer.offs[m] = at + RX_TCP_AT;
      summer.lens[m] = segLen > RX_TCP_AT ? segLen - RX_TCP_AT : 0;
    }
    summer.sumMany(m);
    let j = 0;
    for (let at = off; at < end; at += gso, j++) {
      c[C.gro_segments]++;
      const segLen = Math.min(end - at, gso);
      const pre = j < m && segLen > RX_TCP_AT ? summer.out[j] : -1;
      const code = this.rxVxlan(b, i, at, segLen, pre);
      if (code !== Drop.None) s.drop(code);
    }
  }

  /**
   * A VXLAN datagram at [off, off+len): datagram `idx` of `b` (or a GRO segment of it).
   * `pre`: sum of [off + RX_TCP_AT, off + len) when known, else -1.
   */
  private rxVxlan(b: Batch, idx: number, off: number, len: number, pre: number): number {
    const s = this.s;
    const slot = b.slot[idx];
    const vx = s.vx;
    let code = vxlanDecap(this.u8, off, len, vx);
    if (code !== Drop.None) return code;
    if (vx.vni !== s.o.vni) return Drop.UnknownVni;
    const eth = s.eth;
    code = ethernetParse(this.u8, vx.innerOff, vx.innerLen, eth);
    if (code !== Drop.None) return code;
    // vxlan-l2 in a method of its own, so that this one stays small for the L3 path: V8
    // inlines by bytecode size, and with the L2 branch (grown by IPv6 and queue learning)
    // inline here, L3 TCP measured ~7 % slower.
    if (s.l2) return this.bridge.rxFrame(b, idx, off, len, pre);
    // flannel mode carries IP only; the TUN takes the packet without its Ethernet header.
    if (eth.ethertype === ETHERTYPE_IPV4) {
      const ip = s.ip;
      code = ipv4Parse(this.u8, eth.payloadOff, eth.payloadLen, ip);
      if (code !== Drop.None) return code;
      const coal = this.dev.coal;
      const ipOff = eth.payloadOff;
      const total = ip.totalLen;
      const known = ipOff + IPV4_HDR_LEN === off + RX_TCP_AT && ipOff + total === off + len;
      if (coal === undefined || !coal.add(slot, ipOff, total, known ? pre : -1)) {
        this.dev.push(slot, ipOff, total);
      }
    } else if (eth.ethertype === ETHERTYPE_IPV6) {
      code = this.rx6(slot, off, pre);
      if (code !== Drop.None) return code;
    } else {
      return Drop.UnsupportedEthertype;
    }
    s.stats.counters[C.decap_packets]++;
    return Drop.None;
  }

  /**
   * The IPv6 packet behind the Ethernet header rxVxlan parsed (s.eth), checked (a
   * truncated header or a jumbogram is dropped by name), then merged where the TUN took
   * TSO6; `pre` as for IPv4, summed from where IPv4's TCP header would start.
   */
  private rx6(slot: number, off: number, pre: number): number {
    const s = this.s;
    const eth = s.eth;
    const ipOff = eth.payloadOff;
    const code = ipv6Parse(this.u8, ipOff, eth.payloadLen, s.ip6);
    if (code !== Drop.None) return code;
    const total = s.ip6.totalLen;
    const known = ipOff + IPV4_HDR_LEN === off + RX_TCP_AT && total === eth.payloadLen;
    if (!this.dev.add6(slot, ipOff, total, known ? pre : -1)) this.dev.push(slot, ipOff, total);
    return Drop.None;
  }

  private rxIpip(slot: number, off: number, len: number, pre: number): number {
    const s = this.s;
    const info = s.ipipInfo;
    const code = ipipDecap(this.u8, off, len, info);
    // 6in4 (protocol 41 socket) only once the IPIP parse refused the protocol.
    if (code !== Drop.None) {
      return code === Drop.Ipv4BadProtocol ? this.rxSit(slot, off, len, pre) : code;
    }
    const ipOff = info.innerOff;
    const total = info.innerLen;
    s.stats.counters[C.decap_packets]++;
    // `pre` was summed from off + 40: usable when both headers are 20 bytes and the inner
    // packet ends where the datagram does.
    const known = ipOff + IPV4_HDR_LEN === off + IPIP_TCP_AT && ipOff + total === off + len;
    if (this.dev.coal?.add(slot, ipOff, total, known ? pre : -1)) return Drop.None;
    this.dev.push(slot, ipOff, total);
    return Drop.None;
  }

  /**
   * The IPv6 packet of a 6in4 datagram whose outer header ipipDecap parsed, to the TUN
   * (merged where it took TSO6; `pre` as for rxIpip, summed from off + 40).
   */
  private rxSit(slot: number, off: number, len: number, pre: number): number {
    const s = this.s;
    const info = s.ipipInfo;
    const code = sitDecap(this.u8, info, s.ip6);
    if (code !== Drop.None) return code;
    s.stats.counters[C.decap_packets]++;
    const ipOff = info.innerOff;
    const total = info.innerLen;
    const known = ipOff + IPV4_HDR_LEN === off + IPIP_TCP_AT && ipOff + total === off + len;
    if (!this.dev.add6(slot, ipOff, total, known ? pre : -1)) this.dev.push(slot, ipOff, total);
    return Drop.None;
  }
}
