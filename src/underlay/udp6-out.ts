// The per-packet VXLAN path over an IPv6 underlay. The forwarder writes every outer
// header as it does for IPv4 (send.ts: outer IPv4 + UDP in the slot's headroom, with
// the flow's source port, TTL and TOS decided in TypeScript) and queues the packet for
// "the raw socket". With an IPv6 underlay this sink stands in for that socket: it
// reads those decisions back from the header just written, steps over it, and sends
// the VXLAN datagram from the pool socket bound to that source port (AF_INET6), with
// the TTL and TOS as IPV6_HOPLIMIT / IPV6_TCLASS. The kernel writes the IPv6 and UDP
// headers and the UDP checksum IPv6 requires (RFC 8200 §8.1); a raw IPv6 socket would
// leave that sum over the whole frame to us. Nothing is copied or allocated per packet.
import { IPV4_HDR_LEN } from "../encap/ipv4.js";
import { UDP_HDR_LEN } from "../encap/udp.js";
import type { Batch } from "../io/batch.js";
import { GsoBatch } from "../io/gso-batch.js";
import type { UdpSocket } from "./udp.js";

const OUTER = IPV4_HDR_LEN + UDP_HDR_LEN;

export class Udp6Out {
  /** One message list per pool socket. */
  private readonly out: GsoBatch[];
  /** Pool socket index by source port (-1: not a pool port). */
  private readonly byPort = new Int16Array(65536).fill(-1);

  constructor(
    private readonly u8: Uint8Array,
    private readonly sockets: readonly UdpSocket[],
    private readonly sportLo: number,
    capacity: number,
  ) {
    this.out = sockets.map(() => new GsoBatch(capacity));
    sockets.forEach((s, k) => {
      this.byPort[s.localPort] = k;
    });
  }

  /**
   * The BatchSink of the raw path: packets [from, from+count) of `b`, each an outer
   * IPv4 + UDP header (ours, 28 bytes) and a VXLAN datagram. Returns how many were
   * consumed (failed sends are counted by the sockets, as the raw socket's are).
   */
  sendBatch(b: Batch, from: number, count: number): number {
    const u8 = this.u8;
    const n = this.sockets.length;
    for (let i = from; i < from + count; i++) {
      const ip = b.off[i];
      const udp = ip + IPV4_HDR_LEN;
      const sport = (u8[udp] << 8) | u8[udp + 1];
      let k = this.byPort[sport];
      // Without the offload pool the port came from the whole range: same flow, same socket.
      if (k < 0) k = (sport - this.sportLo) % n;
      const o = this.out[k];
      if (o.count === o.capacity) this.flush(k);
      // tos << 8 | ttl, as the pool's cmsgs take them (ttl >= 1: ours is never 0).
      const meta = (u8[ip + 1] << 8) | (u8[ip + 8] || 1);
      o.pushGso(
        b.slot[i],
        ip + OUTER,
        b.len[i] - OUTER,
        b.addr[i],
        (u8[udp + 2] << 8) | u8[udp + 3],
        0,
        meta,
      );
    }
    for (let k = 0; k < n; k++) if (this.out[k].count > 0) this.flush(k);
    return count;
  }

  private flush(k: number): void {
    const o = this.out[k];
    this.sockets[k].sendGso(o, 0, o.count);
    o.clear();
  }
}
