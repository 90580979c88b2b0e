// The hot loop: one call per batch in each direction, no allocation, no closure and no
// promise per packet. Packets never move: encapsulation writes headers into the slot's
// headroom (off -= n), decapsulation advances off; the same slot goes to the kernel.
//
//   device batch (TUN: IPv4 packets, TAP: Ethernet frames)
//     -> send.ts (L3) or bridge.ts (vxlan-l2): classify, route/neighbour/FDB lookup,
//        VXLAN or IPIP header, outer IPv4 (+UDP); too-big.ts when it does not fit
//     -> underlay-out.ts: one sendmmsg on a header-including raw socket
//   underlay batch (UDP payloads for VXLAN, whole IPv4 packets for IPIP)
//     -> receive.ts: validate and decapsulate, (learn: bridge.ts)
//     -> device-out.ts: one write per packet to the device
//
// Offload fast path (`io.offload: auto`, every mode, see offload/fastpath.ts): the
// TUN/TAP carries a virtio_net_hdr in front of every packet and hands us TCP/UDP
// super-packets, which send-offload.ts cuts into segments and sends as UDP_SEGMENT
// messages on a pool socket bound to the flow's source port; receive merges in-order
// segments again (offload/coalesce.ts) into one GSO write.
//
// The stages are classes created once per Forwarder over one shared FwdState, so each
// call site always sees the same class (monomorphic) and nothing is allocated per packet.
import { Drop } from "../encap/drop.js";
import type { Fdb, Neigh6Table, NeighTable, RouteTable, RouteTable6 } from "../fdb/index.js";
import type { Batch } from "../io/batch.js";
import type { Slab } from "../io/slab.js";
import {
  newVnetHeader,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_ECN,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_LEN,
  type VnetHeader,
  vnetRead,
} from "../tun/vnet.js";
import { BridgePort } from "./bridge.js";
import { DeviceOut } from "./device-out.js";
import { Receiver } from "./receive.js";
import { Sender } from "./send.js";
import { OffloadSender } from "./send-offload.js";
import {
  type BatchSink,
  type FastPathIo,
  type ForwarderOptions,
  FwdState,
  type LearnHook,
} from "./state.js";
import { C, type Stats } from "./stats.js";
import { UnderlayOut } from "./underlay-out.js";

export {
  type BatchSink,
  type FastPathIo,
  type ForwarderOptions,
  FRAG_INNER,
  FRAG_OUTER,
  type GatherSink,
  INHERIT,
  MODE_IPIP,
  MODE_VXLAN,
  MODE_VXLAN_L2,
} from "./state.js";

export class Forwarder {
  private readonly s: FwdState;
  private readonly out: UnderlayOut;
  private readonly dev: DeviceOut;
  private readonly send: Sender;
  private readonly offload: OffloadSender;
  private readonly bridge: BridgePort;
  private readonly rx: Receiver;
  /** The virtio_net_hdr of the packet being read (fast path). */
  private readonly vh: VnetHeader = newVnetHeader();

  constructor(
    o: ForwarderOptions,
    slab: Slab,
    fdb: Fdb,
    neigh: NeighTable,
    routes: RouteTable,
    stats: Stats,
    underlay: BatchSink,
    device: BatchSink,
    fast?: FastPathIo,
  ) {
    const s = new FwdState(o, slab, fdb, neigh, routes, stats, fast);
    this.s = s;
    this.out = new UnderlayOut(s, underlay);
    this.dev = new DeviceOut(s, device);
    this.send = new Sender(s, this.out, this.dev);
    this.offload = new OffloadSender(s, this.out, this.send);
    this.bridge = new BridgePort(s, this.send, this.offload, this.out, this.dev);
    this.rx = new Receiver(s, this.bridge, this.dev);
  }

  /** See LearnHook (state.ts). */
  set onLearn(hook: LearnHook | undefined) {
    this.s.onLearn = hook;
  }

  /** A queue worker's new copy of the tables (tables.ts); between batches only. */
  setTables(fdb: Fdb, neigh: NeighTable, routes: RouteTable): void {
    const s = this.s;
    s.fdb = fdb;
    s.neigh = neigh;
    s.routes = routes;
    this.send.clearDests();
  }

  /** The IPv6 route and neighbour tables (L3 modes); between batches only. */
  setTables6(routes6: RouteTable6, neigh6: Neigh6Table): void {
    const s = this.s;
    s.routes6 = routes6;
    s.neigh6 = neigh6;
    this.send.clearDests();
  }

  /** A batch read from the TUN/TAP device. Bound once, handed to the reader. */
  readonly fromDevice = (b: Batch): void => {
    const s = this.s;
    const c = s.stats.counters;
    const out = this.out;
    c[C.tun_rx_batches]++;
    const n = b.count;
    for (let i = 0; i < n; i++) {
      c[C.tun_rx_packets]++;
      c[C.tun_rx_bytes] += b.len[i];
      const code = s.vnet
        ? this.txVnet(b.slot[i], b.off[i], b.len[i])
        : s.l2
          ? this.bridge.txFrame(b.slot[i], b.off[i], b.len[i])
          : this.send.txPacket(b.slot[i], b.off[i], b.len[i]);
      if (code !== Drop.None) s.drop(code);
      out.room(8);
    }
    out.flush();
    this.dev.flush();
    b.freeSlots(s.slab, 0, n);
    s.freeExtra();
  };

  /** A packet (or frame) from a TUN/TAP with a virtio_net_hdr (fast path). */
  private txVnet(slot: number, off: number, len: number): number {
    const s = this.s;
    const h = this.vh;
    vnetRead(s.u8, off - VNET_LEN, h);
    const gso = h.gsoType & ~VNET_GSO_ECN;
    if (gso === VNET_GSO_NONE) {
      if (h.flags & VNET_F_NEEDS_CSUM && !this.offload.completeChecksum(off, len, h)) {
        return Drop.VnetBadCsumOffset;
      }
      return s.l2 ? this.bridge.txFrame(slot, off, len) : this.send.txPacket(slot, off, len);
    }
    const udp = gso === VNET_GSO_UDP_L4;
    if (gso !== VNET_GSO_TCPV4 && gso !== VNET_GSO_TCPV6 && !udp) return Drop.VnetBadGsoType;
    if (s.l2) return this.bridge.txSuperFrame(off, len, h.gsoSize, udp);
    return this.offload.txSuper(off, len, h.gsoSize, udp, false);
  }

  /** A batch received from the underlay socket. Bound once, handed to the reader. */
  readonly fromUnderlay = (b: Batch): void => {
    const s = this.s;
    this.rx.batch(b);
    this.dev.flushAll();
    b.freeSlots(s.slab, 0, b.count);
    s.freeExtra();
  };
}
