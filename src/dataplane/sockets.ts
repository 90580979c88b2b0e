// The underlay side of one forwarding queue: the socket it receives on (UDP on the
// VXLAN port, or a raw IPIP socket), the header-including raw socket it sends small
// packets from, and on the fast path the UDP_GRO sizes and the UDP_SEGMENT sender pool.
// Opened the same way by the main thread (queue 0) and by every queue worker; with
// several queues the VXLAN port and the pool's source ports are shared (SO_REUSEPORT),
// so the kernel spreads received flows over the queues by their outer 4-tuple.
import { type IoEndpoint, STAT } from "../io/endpoint.js";
import type { Slab } from "../io/slab.js";
import type { PeerTable6 } from "../underlay/peers6.js";
import { RawSocket } from "../underlay/raw.js";
import type { PmtuDiscMode } from "../underlay/sockopt.js";
import { UdpSocket } from "../underlay/udp.js";
import { Udp6Out } from "../underlay/udp6-out.js";
import { UdpSenderPool } from "./offload/fastpath.js";
import { ipipQueueFilter } from "./steer.js";

/** IPPROTO_RAW: a send-only raw socket whose packets carry their own IPv4 header. */
const IPPROTO_RAW = 255;
const IPPROTO_IPIP = 4;
/** 6in4 (RFC 4213): IPv6 pods in ipip mode. */
const IPPROTO_IPV6 = 41;

export interface UnderlaySpec {
  mode: "vxlan" | "vxlan-l2" | "ipip";
  localIp: number;
  port: number;
  /** Offload fast path: UDP_GRO on the receiving socket and a UDP_SEGMENT pool. */
  fast: boolean;
  udpGro: boolean;
  batch: number;
  sportLo: number;
  sportHi: number;
  sourcePorts: number;
  pmtuDisc: PmtuDiscMode;
  /** Fixed outer TTL for the pool (0: per-message cmsgs / the kernel's default). */
  ttl: number;
  /**
   * Forwarding queues. More than one: the VXLAN port and source ports are shared
   * (SO_REUSEPORT); in ipip mode each queue's raw socket filters its share (steer.ts).
   */
  queues: number;
}

/**
 * An IPv6 underlay (vxlan modes): the local address and the table the dataplane's peer
 * numbers index (peers6.ts). Every datagram then leaves from the pool's AF_INET6
 * sockets (created with or without the fast path) through `out6`.
 */
export interface Underlay6 {
  addr: Uint8Array;
  peers: PeerTable6;
}

export interface Underlay {
  rx: UdpSocket | RawSocket;
  /** ipip, queue 0 only: the raw socket for 6in4 (IPv6 pods); their traffic is light. */
  rx6: RawSocket | undefined;
  tx: RawSocket;
  pool: UdpSenderPool | undefined;
  /** UDP_GRO segment sizes parallel to the rx batch (undefined: GRO off). */
  rxGso: Uint16Array | undefined;
  /** IPv6 underlay: where the per-packet path's datagrams go instead of `tx`. */
  out6: Udp6Out | undefined;
}

/** The underlay sockets of queue `index` (0: the main thread's). */
export function openUnderlay(spec: UnderlaySpec, slab: Slab, index = 0, v6?: Underlay6): Underlay {
  const shared = spec.queues > 1;
  let rx: UdpSocket | RawSocket | undefined;
  let rx6: RawSocket | undefined;
  let tx: RawSocket | undefined;
  let pool: UdpSenderPool | undefined;
  let rxGso: Uint16Array | undefined;
  try {
    tx = RawSocket.open({ slab, protocol: IPPROTO_RAW, hdrIncl: true, sndBuf: 4 << 20 });
    rx =
      spec.mode === "ipip"
        ? RawSocket.open({
            slab,
            protocol: IPPROTO_IPIP,
            addr: spec.localIp,
            rcvBuf: 4 << 20,
            ...(shared ? { filter: ipipQueueFilter(index, spec.queues) } : {}),
          })
        : UdpSocket.open({
            slab,
            addr: spec.localIp,
            port: spec.port,
            reusePort: shared,
            rcvBuf: spec.fast ? 16 << 20 : 4 << 20,
            v6,
          });
    if (spec.mode === "ipip" && index === 0) {
      rx6 = RawSocket.open({
        slab,
        protocol: IPPROTO_IPV6,
        addr: spec.localIp,
        rcvBuf: 4 << 20,
      });
    }
    if (spec.fast && rx instanceof UdpSocket) {
      rxGso = new Uint16Array(new ArrayBuffer(spec.batch * 2));
      if (!spec.udpGro || !rx.enableGro(rxGso)) rxGso = undefined;
    }
    if ((spec.fast || v6 !== undefined) && rx instanceof UdpSocket) {
      pool = new UdpSenderPool({
        slab,
        localIp: spec.localIp,
        sportLo: spec.sportLo,
        sportHi: spec.sportHi,
        size: spec.sourcePorts,
        pmtuDisc: spec.pmtuDisc,
        ttl: spec.ttl,
        batch: spec.batch,
        sndBuf: 8 << 20,
        reusePort: shared,
        onPmtu: () => undefined,
        v6,
      });
    }
  } catch (e) {
    pool?.close();
    rx6?.close();
    rx?.close();
    tx?.close();
    throw e;
  }
  const out6 =
    v6 !== undefined && pool !== undefined
      ? new Udp6Out(slab.u8, pool.sockets, spec.sportLo, Math.min(1024, spec.batch * 4))
      : undefined;
  return { rx, rx6, tx, pool, rxGso, out6 };
}

export function closeUnderlay(u: Underlay): void {
  u.rx.close();
  u.rx6?.close();
  u.tx.close();
  u.pool?.close();
}

/**
 * Sum the endpoints' error counters into `out` (indexed like IO_ERROR_FIELDS: eagain,
 * enobufs, econnrefused, emsgsize, tunWrite). Reads the addon's counter arrays directly
 * and allocates nothing: queue workers publish this four times a second.
 */
export function sumIoErrors(u: Underlay, device: IoEndpoint, out: Float64Array): void {
  const tx = u.tx.stats;
  let eagain = tx[STAT.eagain];
  let enobufs = tx[STAT.enobufs];
  let refused = tx[STAT.econnrefused] + u.rx.stats[STAT.econnrefused];
  let emsgsize = tx[STAT.emsgsize];
  const pool = u.pool?.sockets ?? [];
  for (let i = 0; i < pool.length; i++) {
    const p = pool[i].stats;
    eagain += p[STAT.eagain];
    enobufs += p[STAT.enobufs];
    refused += p[STAT.econnrefused];
    emsgsize += p[STAT.emsgsize];
  }
  out[0] = eagain;
  out[1] = enobufs;
  out[2] = refused;
  out[3] = emsgsize;
  out[4] = device.stats[STAT.eagain] + device.stats[STAT.enobufs];
}
