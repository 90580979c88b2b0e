// The device side: decapsulated packets (and ICMP errors, proxied ARP replies) for the
// TUN/TAP, written after the underlay batch through the counted flush (flush.ts). With
// the offload fast path, in-order TCP segments and UDP datagrams of a flow are first
// merged (coalesce.ts) into one GSO write, and every write carries a virtio_net_hdr.
import { read16 } from "../encap/bytes.js";
import { Drop } from "../encap/drop.js";
import { ETH_HDR_LEN } from "../encap/ethernet.js";
import { IPV6_HDR_LEN, IPV6_PAYLOAD_LEN } from "../encap/ipv6.js";
import { Batch } from "../io/batch.js";
import { VNET_LEN, vnetWritePlain } from "../tun/vnet.js";
import { countFlush, FlushCounters } from "./flush.js";
import { Coalescer, MAX_GROUP_SEGMENTS, type VnetSink } from "./offload/coalesce.js";
import type { BatchSink, FwdState } from "./state.js";
import { C } from "./stats.js";

export class DeviceOut implements VnetSink {
  readonly b: Batch;
  readonly coal: Coalescer | undefined;
  /** A vnet header range + a frame (push on a TAP). */
  private readonly frameRanges = { off: new Uint32Array(2), len: new Uint32Array(2) };
  private readonly counts: FlushCounters;

  constructor(
    private readonly s: FwdState,
    private readonly sink: BatchSink,
  ) {
    const fast = s.fast;
    this.coal =
      fast !== undefined
        ? new Coalescer(
            s.u8,
            fast.summer,
            this,
            s.l2 ? ETH_HDR_LEN : 0,
            fast.usoWrites,
            s.l2 || fast.tso6Writes,
          )
        : undefined;
    this.b = new Batch(s.o.batch);
    // Coalesced super-packets are written from their segments' ranges (coalesce.ts).
    if (fast !== undefined) this.b.withGather(s.o.batch * (MAX_GROUP_SEGMENTS + 1));
    const c = s.stats.counters;
    const hdr = s.vnet ? VNET_LEN : 0;
    this.counts = new FlushCounters(
      c,
      -1,
      -1,
      C.tun_tx_packets,
      C.tun_tx_bytes,
      c,
      C.tun_write_errors,
      hdr,
    );
  }

  flush(): void {
    const b = this.b;
    if (b.count === 0) return;
    countFlush(b, undefined, this.sink.sendBatch(b, 0, b.count), this.counts);
  }

  /** End of an underlay batch: the open coalescing group, its counters, the writes. */
  flushAll(): void {
    const coal = this.coal;
    if (coal !== undefined) {
      coal.flush();
      const c = this.s.stats.counters;
      c[C.coalesced_writes] = coal.mergedWrites;
      c[C.coalesced_segments] = coal.mergedSegments;
      c[C.coalesced_udp_writes] = coal.mergedUdpWrites;
      c[C.coalesced_udp_datagrams] = coal.mergedUdpDatagrams;
      c[C.rx_inner_csum_bad] = coal.badChecksum;
    }
    this.flush();
  }

  /** VnetSink: a packet that already starts with its virtio_net_hdr. */
  deviceVnet(slot: number, off: number, len: number): void {
    if (this.b.count === this.b.capacity) this.flush();
    this.b.push(slot, off, len, 0, 0);
  }

  /** VnetSink: a coalesced super-packet, written from its ranges with one writev(). */
  deviceVnetGather(slot: number, offs: Uint32Array, lens: Uint32Array, count: number): void {
    const b = this.b;
    if (b.count === b.capacity || !b.pushGather(slot, 0, 0, count)) {
      this.flush();
      b.pushGather(slot, 0, 0, count);
    }
    for (let i = 0; i < count; i++) b.addRange(offs[i], lens[i]);
  }

  /**
   * An IPv6 packet at [ip, ip+avail) (`avail`: what the frame or datagram holds) offered
   * to the coalescer; false: not taken, the caller writes it. `pre`: the sum of
   * [ip+20, ip+avail) when known (coalesce.ts), else -1.
   */
  add6(slot: number, ip: number, avail: number, pre: number): boolean {
    const coal = this.coal;
    if (coal === undefined || avail < IPV6_HDR_LEN) return false;
    const total = IPV6_HDR_LEN + read16(this.s.u8, ip + IPV6_PAYLOAD_LEN);
    return total <= avail && coal.add(slot, ip, total, total === avail ? pre : -1);
  }

  /** VnetSink: scratch for a vnet header, in the batch's header arena. */
  vnetScratch(): number {
    return this.s.headerSpace(VNET_LEN);
  }

  /**
   * Queue a packet for the device. With a vnet header: after any open coalescing group
   * (order), behind an all-zero header (the kernel verifies checksums itself).
   */
  push(slot: number, off: number, len: number): void {
    const s = this.s;
    if (!s.vnet) {
      if (this.b.count === this.b.capacity) this.flush();
      this.b.push(slot, off, len, 0, 0);
      return;
    }
    this.coal?.flush();
    if (s.l2) {
      // The vnet header is a range of its own (see coalesce.ts: the 10 bytes before a
      // frame may belong to the previous datagram of a GRO batch).
      const h = this.vnetScratch();
      if (h < 0) {
        s.drop(Drop.PoolExhausted);
        return;
      }
      vnetWritePlain(s.u8, h, 0);
      const r = this.frameRanges;
      r.off[0] = h;
      r.len[0] = VNET_LEN;
      r.off[1] = off;
      r.len[1] = len;
      this.deviceVnetGather(slot, r.off, r.len, 2);
      return;
    }
    vnetWritePlain(s.u8, off - VNET_LEN, 0);
    this.deviceVnet(slot, off - VNET_LEN, len + VNET_LEN);
  }
}
