// The real Forwarder in vxlan mode over a private slab, with sinks instead of devices
// and sockets: node A (POD_A's node) sends to POD_B behind NODE_B. Shared by the
// allocation benchmark (bench/fastpath-alloc.ts) and the send-layout test
// (test/offload/sends.test.ts); swap `sockets[k].sendGso` to capture what would be sent.

import { Forwarder, INHERIT, MODE_VXLAN } from "../src/dataplane/forwarder.js";
import { NativeSummer, type UdpSenderPool } from "../src/dataplane/offload/fastpath.js";
import {
  VNET_GSO_TCPV4,
  VNET_GSO_UDP_L4,
  VNET_LEN,
  vnetWrite,
} from "../src/dataplane/offload/segment.js";
import { Stats } from "../src/dataplane/stats.js";
import { write16, write32 } from "../src/encap/bytes.js";
import { internetChecksum } from "../src/encap/checksum.js";
import { DfPolicy } from "../src/encap/ipip.js";
import { Fdb, NeighTable, RouteTable } from "../src/fdb/index.js";
import type { Batch } from "../src/io/batch.js";
import { GsoBatch } from "../src/io/gso-batch.js";
import { Slab } from "../src/io/slab.js";

export const POD_A = 0x0af40101;
export const POD_B = 0x0af40201;
export const NODE_B = 0xc6120002;
export const MAC_B = 0x020000000201;
/** MSS at tunnel MTU 1450 with TCP timestamps. */
export const MSS = 1398;

export type GsoSink = (b: GsoBatch, from: number, count: number) => number;

export function forwarderRig() {
  const slab = new Slab({ count: 64, slotSize: 128 + 65536, headroom: 128 });
  const u8 = slab.u8;
  const stats = new Stats();
  const fdb = new Fdb({ dev: "vxtun0", vni: 1, dstPort: 8472, ageingMs: 0 });
  const neigh = new NeighTable({ dev: "vxtun0" });
  const routes = new RouteTable({ dev: "vxtun0" });
  routes.replace(0x0af40200, 24, { gateway: 0x0af40200, onlink: true });
  neigh.replace(0x0af40200, MAC_B);
  fdb.replace(MAC_B, NODE_B);

  const counted = { sent: 0 };
  const sink = {
    sendBatch: (_b: Batch, _from: number, count: number) => {
      counted.sent += count;
      return count;
    },
  };
  const sockets: { sendGso: GsoSink }[] = Array.from({ length: 4 }, () => ({
    sendGso: (_b: GsoBatch, _from: number, count: number) => {
      counted.sent += count;
      return count;
    },
  }));
  const pool = {
    sockets,
    batches: sockets.map(() => new GsoBatch(64).withGather(2048)),
    ports: Uint16Array.from([40000, 41000, 42000, 43000]),
    get size() {
      return 4;
    },
  } as unknown as UdpSenderPool;
  const rxGso = new Uint16Array(64);
  const fwd = new Forwarder(
    {
      mode: MODE_VXLAN,
      vni: 1,
      port: 8472,
      sportLo: 32768,
      sportHi: 60999,
      localIp: 0xc6120001,
      vtepMac: 0x020000000101,
      ttl: 64,
      tos: INHERIT,
      df: DfPolicy.Clear,
      proxyArp: false,
      learning: false,
      allowPeers: [],
      batch: 64,
      tunnelMtu: 1450,
      underlayMtu: 1500,
      fragment: 0,
    },
    slab,
    fdb,
    neigh,
    routes,
    stats,
    sink,
    sink,
    { pool, udpSegment: true, usoWrites: true, rxGso, summer: new NativeSummer(slab.buffer) },
  );

  /** An IPv4 header POD_A -> POD_B (DF, TTL 64) at `ip`, checksum filled in. */
  function ipv4Header(ip: number, total: number, proto: number, id: number): void {
    u8[ip] = 0x45;
    u8[ip + 1] = 0;
    write16(u8, ip + 2, total);
    write16(u8, ip + 4, id);
    write16(u8, ip + 6, 0x4000);
    u8[ip + 8] = 64;
    u8[ip + 9] = proto;
    write32(u8, ip + 12, POD_A);
    write32(u8, ip + 16, POD_B);
    write16(u8, ip + 10, 0);
    write16(u8, ip + 10, internetChecksum(u8, ip, 20));
  }

  /**
   * A TSO super-packet of `payload` bytes (TCP with a 12-byte option block, sequence
   * `seq`; with `fill`, payload byte k = (seq + k) & 0xff) in `slot`, its
   * virtio_net_hdr in front. Returns its length.
   */
  function superPacket(slot: number, seq: number, payload: number, fill = false): number {
    const ip = slab.dataOffset(slot);
    const total = 20 + 32 + payload;
    ipv4Header(ip, total, 6, 0);
    const tcp = ip + 20;
    write16(u8, tcp, 40000);
    write16(u8, tcp + 2, 5201);
    write32(u8, tcp + 4, seq);
    write32(u8, tcp + 8, 0);
    u8[tcp + 12] = 8 << 4;
    u8[tcp + 13] = 0x10;
    write16(u8, tcp + 14, 0xffff);
    write16(u8, tcp + 16, 0);
    write16(u8, tcp + 18, 0);
    for (let k = 20; k < 32; k++) u8[tcp + k] = 1; // NOPs
    if (fill) for (let k = 0; k < payload; k++) u8[tcp + 32 + k] = (seq + k) & 0xff;
    vnetWrite(u8, ip - VNET_LEN, 1, VNET_GSO_TCPV4, 52, MSS, 20, 16);
    return total;
  }

  /**
   * A USO super-packet (an application's UDP_SEGMENT run: `payload` bytes in datagrams
   * of `size`) in `slot`, its virtio_net_hdr in front. Returns its length.
   */
  function udpSuperPacket(slot: number, payload: number, size: number): number {
    const ip = slab.dataOffset(slot);
    const total = 28 + payload;
    ipv4Header(ip, total, 17, 0);
    write16(u8, ip + 20, 40000);
    write16(u8, ip + 22, 4433);
    write16(u8, ip + 24, 8 + payload);
    write16(u8, ip + 26, 0);
    vnetWrite(u8, ip - VNET_LEN, 1, VNET_GSO_UDP_L4, 28, size, 20, 6);
    return total;
  }

  return {
    slab,
    u8,
    stats,
    fwd,
    sockets,
    pool,
    rxGso,
    counted,
    ipv4Header,
    superPacket,
    udpSuperPacket,
  };
}
