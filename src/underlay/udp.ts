// Batched UDP/IPv4: recvmmsg into free slab slots, sendmmsg with a destination per
// message. node:dgram allocates and copies per datagram and cannot batch, so the
// dataplane uses this instead (docs/kernel-interfaces.md).
//
// Errors and path MTU: IP_RECVERR is on by default. Then an unconnected socket still
// learns about ICMP errors: a port unreachable shows up as ECONNREFUSED on the next
// send or receive (counted as `econnrefused`), and EMSGSIZE (datagram larger than the
// path MTU with IP_PMTUDISC_DO/PROBE, or an ICMP "fragmentation needed") comes with
// the MTU in the error queue's sock_extended_err.ee_info. We report it through
// `onPmtu(addr, port, mtu)`. This was chosen over getsockopt(IP_MTU) on a connected
// probe socket because it needs no extra socket and stays in the socket's own network
// namespace (a probe created later on the main thread might be in another one).

//
// IPv6 underlay: the same socket over AF_INET6 (IPv6 only), with IPV6_RECVERR and
// IPV6_MTU_DISCOVER in place of their IPv4 twins; the kernel computes the UDP checksum
// IPv6 makes mandatory. Peers are numbers here too: indexes into a PeerTable6 (see
// peers6.ts), which the addon reads to address each message and which turns every
// received datagram's source into its index before the batch handler runs.

import { formatIpv4 } from "../encap/addr.js";
import { formatIpv6 } from "../encap/addr6.js";
import type { Batch } from "../io/batch.js";
import { type BatchHandler, IoEndpoint, type IoErrorHandler } from "../io/endpoint.js";
import type { GsoBatch } from "../io/gso-batch.js";
import { C, native } from "../io/native.js";
import type { Slab } from "../io/slab.js";
import type { PeerTable6 } from "./peers6.js";
import { type PmtuDiscMode, setIntOpt, setPmtuDisc, sizeBuffer, withNewSocket } from "./sockopt.js";

/** An IPv6 underlay socket's local address and the peer table its numbers index. */
export interface Udp6Options {
  /** Local address, 16 bytes (all zeros = any). */
  addr: Uint8Array;
  peers: PeerTable6;
}

export interface UdpOptions {
  slab: Slab;
  /** Local IPv4 address, uint32 host order (0 = any). */
  addr?: number;
  /** Local port (0 = ephemeral). */
  port?: number;
  reuseAddr?: boolean;
  reusePort?: boolean;
  /** Requested SO_RCVBUF / SO_SNDBUF in bytes (FORCE variants tried first). */
  rcvBuf?: number;
  sndBuf?: number;
  /** IP_MTU_DISCOVER: "do" sets DF and never fragments, "dont" never sets DF, "want"
   * (kernel default) follows PMTU, "probe" sets DF but ignores the learned PMTU. */
  pmtuDisc?: PmtuDiscMode;
  /** IP_RECVERR (default true): ICMP errors and PMTU reach us on unconnected sockets. */
  recvErr?: boolean;
  /** An IPv6 socket instead (`addr` is then ignored). */
  v6?: Udp6Options;
}

export interface UdpGsoSupport {
  /** setsockopt(SOL_UDP, UDP_SEGMENT) accepted: sendmsg may carry GSO super-datagrams. */
  udpSegment: boolean;
  /** setsockopt(SOL_UDP, UDP_GRO) accepted: recvmsg may return coalesced datagrams. */
  udpGro: boolean;
}

export class UdpSocket extends IoEndpoint {
  readonly localAddr: number;
  readonly localPort: number;
  /** Effective buffer sizes as reported by the kernel. */
  readonly rcvBuf: number;
  readonly sndBuf: number;

  /** IPv6 sockets: the local address (16 bytes) and the peer table; else undefined. */
  readonly v6: { addr: Uint8Array; peers: PeerTable6; rx: Uint8Array } | undefined;

  private constructor(
    fd: number,
    slab: Slab,
    addr: number,
    port: number,
    rb: number,
    sb: number,
    v6?: Udp6Options,
  ) {
    super(fd, C.IO_KIND_SOCKET, slab);
    this.localAddr = addr;
    this.localPort = port;
    this.rcvBuf = rb;
    this.sndBuf = sb;
    if (v6 !== undefined) {
      // Source addresses of one read, 16 bytes per datagram (the addon's largest batch).
      const rx = new Uint8Array(new ArrayBuffer(C.MAX_BATCH * 16));
      this.v6 = { addr: v6.addr, peers: v6.peers, rx };
      this.io.setAddr6(v6.peers.bytes, rx);
    }
  }

  /** Open and bind a UDP socket in the current network namespace. */
  static open(opts: UdpOptions): UdpSocket {
    const v6 = opts.v6;
    return withNewSocket(
      C.SOCK_DGRAM,
      C.IPPROTO_UDP,
      (fd) => {
        if (opts.reuseAddr) setIntOpt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1, "SO_REUSEADDR");
        if (opts.reusePort) setIntOpt(fd, C.SOL_SOCKET, C.SO_REUSEPORT, 1, "SO_REUSEPORT");
        if (v6 !== undefined) {
          setIntOpt(fd, C.SOL_IPV6, C.IPV6_V6ONLY, 1, "IPV6_V6ONLY");
          if (opts.recvErr !== false) setIntOpt(fd, C.SOL_IPV6, C.IPV6_RECVERR, 1, "IPV6_RECVERR");
        } else if (opts.recvErr !== false) {
          setIntOpt(fd, C.SOL_IP, C.IP_RECVERR, 1, "IP_RECVERR");
        }
        if (opts.pmtuDisc) setPmtuDisc(fd, opts.pmtuDisc, v6 !== undefined);
        const rb = opts.rcvBuf
          ? sizeBuffer(fd, "rcv", opts.rcvBuf)
          : native.getsockoptInt(fd, C.SOL_SOCKET, C.SO_RCVBUF);
        const sb = opts.sndBuf
          ? sizeBuffer(fd, "snd", opts.sndBuf)
          : native.getsockoptInt(fd, C.SOL_SOCKET, C.SO_SNDBUF);
        const addr = opts.addr ?? 0;
        const port = opts.port ?? 0;
        try {
          if (v6 !== undefined) native.bind6(fd, v6.addr, port);
          else native.bind4(fd, addr, port);
        } catch (e) {
          const where = v6 !== undefined ? `[${formatIpv6(v6.addr)}]` : formatIpv4(addr);
          (e as Error).message = `udp bind ${where}:${port}: ${(e as Error).message}`;
          throw e;
        }
        if (v6 !== undefined) {
          const la = new Uint8Array(16);
          const lp = native.getsockname6(fd, la);
          return new UdpSocket(fd, opts.slab, 0, lp, rb, sb, { addr: la, peers: v6.peers });
        }
        const [la, lp] = native.getsockname4(fd);
        return new UdpSocket(fd, opts.slab, la, lp, rb, sb);
      },
      v6 !== undefined ? C.AF_INET6 : C.AF_INET,
    );
  }

  describe(): string {
    if (this.v6 !== undefined) return `udp [${formatIpv6(this.v6.addr)}]:${this.localPort}`;
    return `udp ${formatIpv4(this.localAddr)}:${this.localPort}`;
  }

  setPmtuDisc(mode: PmtuDiscMode): void {
    setPmtuDisc(this.fd, mode, this.v6 !== undefined);
  }

  /** A fixed outer TTL (IPv6: hop limit) for every datagram without a per-message one. */
  setTtl(ttl: number): void {
    if (this.v6 !== undefined) {
      setIntOpt(this.fd, C.SOL_IPV6, C.IPV6_UNICAST_HOPS, ttl, "IPV6_UNICAST_HOPS");
    } else {
      setIntOpt(this.fd, C.SOL_IP, C.IP_TTL, ttl, "IP_TTL");
    }
  }

  /**
   * As IoEndpoint.startReading; on an IPv6 socket each batch's sources are turned into
   * peer-table indexes first (Batch.addr), so handlers see numbers either way.
   */
  override startReading(
    batch: Batch,
    onBatch: BatchHandler,
    onError: IoErrorHandler,
    maxBatch = batch.capacity,
  ): void {
    const v6 = this.v6;
    if (v6 === undefined) {
      super.startReading(batch, onBatch, onError, maxBatch);
      return;
    }
    const { peers, rx } = v6;
    super.startReading(
      batch,
      (b) => {
        peers.resolveBatch(b, rx);
        onBatch(b);
      },
      onError,
      maxBatch,
    );
  }

  /**
   * sendmmsg packets [from, from+count): slab[off, off+len) to addr:port each.
   * Returns how many were consumed (sent, or dropped with a counted per-message error
   * such as EMSGSIZE). Fewer than `count` means the socket is full (EAGAIN/ENOBUFS,
   * counted): retry the rest later or drop it.
   */
  sendBatch(batch: Batch, from = 0, count = batch.count - from): number {
    return this.io.send(batch.off, batch.len, batch.addr, batch.port, from, count);
  }

  /**
   * Turn UDP_GRO on: the kernel may hand us several datagrams of one flow glued
   * together; `gso[i]` (parallel to the reading batch) receives the segment size of
   * datagram i, 0 when it was not coalesced. False when the kernel refuses.
   */
  enableGro(gso: Uint16Array): boolean {
    if (native.setsockoptInt(this.fd, C.SOL_UDP, C.UDP_GRO, 1) !== 0) return false;
    this.io.setGro(gso);
    return true;
  }

  /** sendmmsg with UDP_SEGMENT / IP_TOS / IP_TTL per message; see GsoBatch. */
  sendGso(batch: GsoBatch, from = 0, count = batch.count - from): number {
    return this.sendMessages(batch, from, count);
  }

  /** Probe UDP GSO/GRO on this socket (leaves UDP_SEGMENT and UDP_GRO off). */
  probeGso(): UdpGsoSupport {
    return probeUdpGsoOn(this.fd);
  }
}

function probeUdpGsoOn(fd: number): UdpGsoSupport {
  // Setting then clearing: the probe must not change how the socket behaves.
  const seg = native.setsockoptInt(fd, C.SOL_UDP, C.UDP_SEGMENT, 1400) === 0;
  if (seg) native.setsockoptInt(fd, C.SOL_UDP, C.UDP_SEGMENT, 0);
  const gro = native.setsockoptInt(fd, C.SOL_UDP, C.UDP_GRO, 1) === 0;
  if (gro) native.setsockoptInt(fd, C.SOL_UDP, C.UDP_GRO, 0);
  return { udpSegment: seg, udpGro: gro };
}

/** Probe UDP_SEGMENT / UDP_GRO on a throwaway socket (no traffic, no bind). */
export function probeUdpGso(): UdpGsoSupport {
  const fd = native.socket(C.AF_INET, C.SOCK_DGRAM, C.IPPROTO_UDP);
  try {
    return probeUdpGsoOn(fd);
  } finally {
    native.close(fd);
  }
}
