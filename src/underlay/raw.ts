// Raw IPv4 sockets for IP-in-IP (protocol 4). With IP_HDRINCL the dataplane writes the
// outer IPv4 header into the slot's headroom itself (DF, TTL, TOS are its decisions;
// the kernel fills in the checksum, and the ID when it is 0). Receiving gives the full
// outer packet, header included. Works as root without the ipip module: a raw socket
// bound to protocol 4 takes the packets before the kernel would answer "protocol
// unreachable".

import { formatIpv4 } from "../encap/addr.js";
import type { Batch } from "../io/batch.js";
import { IoEndpoint } from "../io/endpoint.js";
import type { GsoBatch } from "../io/gso-batch.js";
import { C, native } from "../io/native.js";
import type { Slab } from "../io/slab.js";
import { attachFilter, type BpfProgram } from "./bpf.js";
import { setIntOpt, sizeBuffer, withNewSocket } from "./sockopt.js";

export interface RawOptions {
  slab: Slab;
  /** IP protocol number (default 4, IPPROTO_IPIP). */
  protocol?: number;
  /** Only receive packets addressed to this local IPv4 address (uint32; 0 = any). */
  addr?: number;
  /** IP_HDRINCL on sends (default true). */
  hdrIncl?: boolean;
  rcvBuf?: number;
  sndBuf?: number;
  /** IP_RECVERR (default true): EMSGSIZE with the device MTU reaches onPmtu. */
  recvErr?: boolean;
  /** A socket filter, attached first thing after the socket is made (see steer.ts). */
  filter?: BpfProgram;
}

export class RawSocket extends IoEndpoint {
  readonly protocol: number;
  readonly localAddr: number;

  private constructor(fd: number, slab: Slab, protocol: number, addr: number) {
    super(fd, C.IO_KIND_SOCKET, slab);
    this.protocol = protocol;
    this.localAddr = addr;
  }

  /** Open a raw IPv4 socket in the current network namespace (needs CAP_NET_RAW). */
  static open(opts: RawOptions): RawSocket {
    const protocol = opts.protocol ?? C.IPPROTO_IPIP;
    return withNewSocket(C.SOCK_RAW, protocol, (fd) => {
      if (opts.filter) attachFilter(fd, opts.filter, "raw socket");
      if (opts.hdrIncl !== false) setIntOpt(fd, C.SOL_IP, C.IP_HDRINCL, 1, "IP_HDRINCL");
      if (opts.recvErr !== false) setIntOpt(fd, C.SOL_IP, C.IP_RECVERR, 1, "IP_RECVERR");
      if (opts.rcvBuf) sizeBuffer(fd, "rcv", opts.rcvBuf);
      if (opts.sndBuf) sizeBuffer(fd, "snd", opts.sndBuf);
      const addr = opts.addr ?? 0;
      if (addr !== 0) native.bind4(fd, addr, 0);
      return new RawSocket(fd, opts.slab, protocol, addr);
    });
  }

  describe(): string {
    return `raw proto ${this.protocol} ${formatIpv4(this.localAddr)}`;
  }

  /**
   * sendmmsg packets [from, from+count): each slab[off, off+len) is a complete IPv4
   * packet (with hdrIncl) sent towards batch.addr[i]. Same return contract as
   * UdpSocket.sendBatch; a packet larger than the device MTU fails with EMSGSIZE
   * (counted, reported to onPmtu with the MTU) since header-included packets are never
   * fragmented by the kernel.
   */
  sendBatch(batch: Batch, from = 0, count = batch.count - from): number {
    return this.io.send(batch.off, batch.len, batch.addr, batch.port, from, count);
  }

  /**
   * Like sendBatch for a batch whose packets are gathered from slab ranges
   * (pushGsoGather with gso 0 and no TOS/TTL: the header we wrote says it all). The
   * IPIP fast path sends a super-packet's segments this way: a header block each, and
   * the payload where the TUN read put it.
   */
  sendGather(batch: GsoBatch, from = 0, count = batch.count - from): number {
    return this.sendMessages(batch, from, count);
  }
}
