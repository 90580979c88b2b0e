// The offload fast path's sockets and what the kernel offers, decided once at start.
//
// Shape (vxlan mode; vxlan-l2 and ipip differ as noted below and in send-offload.ts,
// bridge.ts and receive.ts;
// `io.offload: auto`, probed by src/tun/probe.ts at start and shown
// by `vxtun stats` / the `info` control op):
//   TX: TUN (IFF_VNET_HDR, TUNSETOFFLOAD CSUM|TSO4, gso_max_size 65536) -> one read per
//       super-packet (up to 64 KB, 64 KiB slab slots) -> segment.ts writes one header
//       block per segment (VXLAN + inner Ethernet + IPv4 + TCP) into a header arena
//       and leaves the payload in place (cut at the MSS, or the route's smaller PMTU;
//       DF -> ICMP frag-needed as before) -> sendmmsg entries with UDP_SEGMENT on the
//       flow's pool socket, each a gather list "block 0, payload 0, block 1, ..." of at
//       most 64 segments / 65507 bytes. No payload byte is copied in user space.
//       Non-GSO packets keep the raw header-including path (all PMTU/fragmentation
//       logic unchanged).
//   RX: the VXLAN socket with UDP_GRO -> recvmmsg gives each datagram's segment size in
//       a cmsg -> split, decapsulate, coalesce.ts merges in-order TCP segments into a
//       gather list (first segment + later payloads in place) -> one writev() to the
//       TUN with a TCPv4 GSO virtio_net_hdr (NEEDS_CSUM); single packets go with
//       DATA_VALID when we verified their TCP checksum, else an all-zero header.
//   Why 65536 and not less: a pod's TCP builds 64 KiB GSO packets for its veth; routed
//   to a TUN with a smaller gso_max_size, the kernel segments them in software before
//   the TUN and every read is 1.4 KB again (test/lab/lab.root.test.ts checks the pod path).
// TS/C++ split: every header is parsed and written in TypeScript; the addon does the
// syscalls (sendmmsg + cmsgs, recvmmsg + UDP_GRO cmsg, vnet-aware TUN reads) and the one
// per-byte loop TypeScript could not keep up with, the Internet checksum sum
// (src/io/native/csum.cc, batched with sumMany: one call per super-packet or GRO
// datagram, since an addon call costs ~0.3 µs, as much as summing 1 KB).
// bench/fastpath-segment.ts: 60 KB super-packet, 42 segments: segmentation ~16 µs
// with the addon's sum vs ~56 µs with the TypeScript one.
// USO (TUN_F_USO4|USO6, when the kernel takes them): an application's UDP_SEGMENT run
// reaches us whole and superSegment cuts it into the sender's datagrams (same header
// blocks + gather lists). TSO6/USO6: IPv6 super-frames from the TAP in vxlan-l2 mode
// and routed IPv6 super-packets from the TUN (segment.ts handles both IP versions);
// received IPv6 merges into TCPv6 writes where the device took TSO6 (coalesce.ts).
// Multi-queue: queues.ts.
//
// TX: UDP GSO needs a UDP socket (the kernel writes the outer IPv4 + UDP headers), so
// the per-flow outer source port (RFC 7348 §5, for underlay ECMP) cannot be chosen per
// packet any more. Instead we bind a small pool of UDP sockets to distinct ports of the
// configured source-port range and pick one by the inner flow hash: one flow keeps one
// port, different flows spread over `pool` ports. The raw (header-including) path maps
// its packets onto the same ports (sourcePorts), so small packets and super-packets of
// one flow share an outer 5-tuple and cannot be reordered by ECMP.
import { formatIpv4 } from "../../encap/addr.js";
import { formatIpv6 } from "../../encap/addr6.js";
import type { PmtuHandler } from "../../io/endpoint.js";
import { GsoBatch } from "../../io/gso-batch.js";
import { native } from "../../io/native.js";
import type { Slab } from "../../io/slab.js";
import type { OffloadProbe } from "../../tun/probe.js";
import type { PmtuDiscMode } from "../../underlay/sockopt.js";
import { type Udp6Options, UdpSocket } from "../../underlay/udp.js";
import { SUM_MANY, type Summer } from "./segment.js";

/** The addon's checksum loop over a slab (src/io/native/csum.cc). */
export class NativeSummer implements Summer {
  readonly offs = new Uint32Array(new ArrayBuffer(SUM_MANY * 4));
  readonly lens = new Uint32Array(new ArrayBuffer(SUM_MANY * 4));
  readonly out = new Uint32Array(new ArrayBuffer(SUM_MANY * 4));
  private readonly c;
  constructor(slab: ArrayBuffer) {
    this.c = new native.Csum(slab, this.offs, this.lens, this.out);
  }
  sum(off: number, len: number): number {
    return this.c.sum(off, len);
  }
  sumMany(count: number): void {
    this.c.sumMany(count);
  }
  /** The addon's portable loop, for tests that hold its vector loop to it. */
  sumScalar(off: number, len: number): number {
    return this.c.sumScalar(off, len);
  }
}

export interface FastPathInfo {
  /** "on" when super-packets are read from the TUN; else why not. */
  state: string;
  probe: OffloadProbe | undefined;
  /** TUNSETOFFLOAD flags in effect. */
  tunOffloads: string[];
  udpSegment: boolean;
  udpGro: boolean;
  /** Outer source ports of the sender pool. */
  sourcePorts: number[];
  /** The addon's checksum loop ("avx2" or "scalar"). */
  csumLoop: string;
}

export interface UdpPoolOptions {
  slab: Slab;
  localIp: number;
  sportLo: number;
  sportHi: number;
  size: number;
  pmtuDisc: PmtuDiscMode;
  /** Fixed outer TTL (0: the kernel's default; per-message cmsgs override). */
  ttl: number;
  batch: number;
  sndBuf: number;
  /** Other queues bind the same ports (SO_REUSEPORT). */
  reusePort?: boolean;
  onPmtu: PmtuHandler;
  /** IPv6 underlay: AF_INET6 sockets on that address (localIp is then unused). */
  v6?: Udp6Options;
}

/** K UDP sockets on distinct source ports, one GsoBatch each. */
export class UdpSenderPool {
  readonly sockets: UdpSocket[] = [];
  readonly batches: GsoBatch[] = [];
  /** Outer source port of socket k. */
  readonly ports: Uint16Array;

  constructor(o: UdpPoolOptions) {
    const range = o.sportHi - o.sportLo + 1;
    const want = Math.max(1, Math.min(o.size, range));
    // Spread the ports over the range; skip ones in use (bind fails) and try the next.
    const step = Math.max(1, Math.floor(range / want));
    const ports: number[] = [];
    try {
      for (let k = 0, tries = 0; ports.length < want && tries < want * 8; tries++, k++) {
        const port = o.sportLo + ((k * step + Math.floor(k / want)) % range);
        if (ports.includes(port)) continue;
        let s: UdpSocket;
        try {
          s = UdpSocket.open({
            slab: o.slab,
            addr: o.localIp,
            port,
            reusePort: o.reusePort,
            sndBuf: o.sndBuf,
            rcvBuf: 4096,
            pmtuDisc: o.pmtuDisc,
            v6: o.v6,
          });
        } catch (e) {
          if ((e as { code?: string }).code === "EADDRINUSE") continue;
          throw e;
        }
        if (o.ttl > 0) s.setTtl(o.ttl);
        s.onPmtu = o.onPmtu;
        this.sockets.push(s);
        // Gather lists: two ranges (header block, payload) per segment.
        this.batches.push(new GsoBatch(o.batch).withGather(Math.max(256, o.batch * 32)));
        ports.push(port);
      }
    } catch (e) {
      this.close();
      throw e;
    }
    if (ports.length === 0) {
      throw new Error(
        `no free UDP source port in ${o.sportLo}-${o.sportHi} on ${o.v6 ? formatIpv6(o.v6.addr) : formatIpv4(o.localIp)}`,
      );
    }
    this.ports = Uint16Array.from(ports);
  }

  get size(): number {
    return this.sockets.length;
  }

  close(): void {
    for (const s of this.sockets) s.close();
  }
}
