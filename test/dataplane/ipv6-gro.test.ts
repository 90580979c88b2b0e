// Receive coalescing of routed IPv6 (vxlan mode, the L3 TUN), without namespaces: the
// real Forwarder (rig) segments an IPv6 TSO super-packet into VXLAN datagrams, which
// come back as one UDP_GRO datagram and must leave for the TUN as ONE TCPv6 GSO write
// carrying the whole stream; a corrupted segment is refused by its checksum, and a TUN
// that did not take TSO6 gets the segments one by one.
import t from "tap";
import { read16, read32 } from "../../src/encap/bytes.js";
import { checksumFold, checksumSum } from "../../src/encap/checksum.js";
import { Batch } from "../../src/io/batch.js";
import {
  newVnetHeader,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_LEN,
  vnetRead,
} from "../../src/tun/vnet.js";
import { forwarderRig, MSS, NODE_B } from "../fixtures/forwarder-rig.js";

const SEGS = 20;
const SIZE = MSS - 20; // the rig's TSO6 gso_size: 20 bytes more IP header than IPv4
const SEQ = 1000;

/**
 * Route one IPv6 super-packet (TSO6, or with `udp` a USO6 run), glue what leaves into
 * one GRO datagram, receive it.
 */
function roundTrip(fastOpts: { tso6Writes?: boolean } = {}, corrupt = -1, udp = false) {
  const rig = forwarderRig({}, fastOpts);
  const datagrams: Buffer[] = [];
  rig.captureMessages((d) => datagrams.push(...d));
  const slot = rig.slab.alloc();
  const len = udp
    ? rig.udpSuperPacket(slot, SEGS * 1000, 1000, true)
    : rig.superPacket(slot, SEQ, SEGS * SIZE, true, true);
  const dev = new Batch(64);
  dev.push(slot, rig.slab.dataOffset(slot), len);
  rig.fwd.fromDevice(dev);
  const gro = Buffer.concat(datagrams);
  const size = datagrams[0].length;
  const rslot = rig.slab.alloc();
  const off = rig.slab.dataOffset(rslot);
  rig.u8.set(gro, off);
  // VXLAN 8 + Ethernet 14 + IPv6 40 + TCP 32: a byte in segment `corrupt`'s payload.
  if (corrupt >= 0) rig.u8[off + corrupt * size + 8 + 14 + 40 + 32 + 5] ^= 0xff;
  rig.counted.keep = true;
  const rx = new Batch(64);
  rx.push(rslot, off, gro.length, NODE_B, 8472);
  rig.rxGso[0] = size;
  rig.fwd.fromUnderlay(rx);
  return { rig, datagrams, writes: rig.counted.device, c: rig.stats.snapshot().counters };
}

/** The TCP payload bytes of an IPv6 packet (no vnet header), and its sequence number. */
function payloadOf(p: Buffer): { seq: number; data: Buffer } {
  const thl = (p[40 + 12] >>> 4) * 4;
  return { seq: read32(p, 40 + 4), data: p.subarray(40 + thl, 40 + read16(p, 4)) };
}

t.test("IPv6 TCP segments from the underlay merge into one TCPv6 write", async (t) => {
  const { datagrams, writes, c } = roundTrip();
  t.equal(datagrams.length, SEGS, `the super-packet left as ${SEGS} datagrams`);
  t.equal(writes.length, 1, "one write to the TUN");
  t.equal(c.coalesced_writes, 1, "coalesced_writes");
  t.equal(c.coalesced_segments, SEGS, "coalesced_segments");
  t.equal(c.rx_inner_csum_bad, 0, "no bad checksum");
  const w = writes[0];
  const h = newVnetHeader();
  vnetRead(w, 0, h);
  t.equal(h.gsoType, VNET_GSO_TCPV6, "gso_type TCPV6");
  t.equal(h.flags, VNET_F_NEEDS_CSUM, "checksum partial");
  t.equal(h.gsoSize, SIZE, "gso_size: the segment size");
  t.equal(h.hdrLen, 40 + 32, "hdr_len: IPv6 + TCP with options");
  t.equal(h.csumStart, 40, "csum_start: the TCP header");
  const p = w.subarray(VNET_LEN);
  t.equal(p.length, 40 + 32 + SEGS * SIZE, "the whole stream");
  t.equal(read16(p, 4), 32 + SEGS * SIZE, "IPv6 payload length covers it");
  const { seq, data } = payloadOf(p);
  t.equal(seq, SEQ, "first sequence number");
  t.ok(
    data.every((b, k) => b === ((SEQ + k) & 0xff)),
    "payload bytes in order",
  );
  // CHECKSUM_PARTIAL: the field holds the pseudo-header sum; with the payload summed
  // in, the segment checks out.
  const l4 = p.length - 40;
  const ph = Buffer.alloc(40);
  p.copy(ph, 0, 8, 40);
  ph.writeUInt32BE(l4, 32);
  ph[39] = 6;
  t.equal(
    checksumFold(checksumSum(ph, 0, 40)),
    read16(p, 40 + 16),
    "checksum field: the folded pseudo-header sum",
  );
});

t.test("a corrupted IPv6 segment is refused by its checksum", async (t) => {
  const { writes, c } = roundTrip({}, 7);
  t.equal(c.rx_inner_csum_bad, 1, "rx_inner_csum_bad counts it");
  // Segments 0-6 merge, 7 goes alone for the kernel to drop, 8-19 merge again.
  t.equal(writes.length, 3, "three writes: merged, the bad one alone, merged");
  t.equal(c.coalesced_segments, SEGS - 1, "every other segment merged");
});

t.test("a TUN without TSO6 gets IPv6 segments one by one", async (t) => {
  const { writes, c } = roundTrip({ tso6Writes: false });
  t.equal(writes.length, SEGS, "one write per segment");
  t.equal(c.coalesced_writes, 0, "nothing merged");
  t.ok(
    writes.every((w) => w.readUInt16BE(VNET_LEN + 4) === 32 + SIZE),
    "each write one segment",
  );
});

t.test("USO6: IPv6 UDP datagrams from the underlay merge into one UDP_L4 write", async (t) => {
  const { datagrams, writes, c } = roundTrip({}, -1, true);
  t.equal(datagrams.length, SEGS, `the run left as ${SEGS} datagrams`);
  t.equal(writes.length, 1, "one write to the TUN");
  t.equal(c.coalesced_udp_writes, 1, "coalesced_udp_writes");
  t.equal(c.coalesced_udp_datagrams, SEGS, "coalesced_udp_datagrams");
  const h = newVnetHeader();
  vnetRead(writes[0], 0, h);
  t.equal(h.gsoType, VNET_GSO_UDP_L4, "gso_type UDP_L4");
  t.equal(h.gsoSize, 1000, "gso_size: the sender's datagram size");
  t.equal(h.csumStart, 40, "csum_start: the UDP header");
  const p = writes[0].subarray(VNET_LEN);
  t.equal(read16(p, 4), 8 + SEGS * 1000, "IPv6 payload length covers the run");
  t.equal(read16(p, 44), 8 + SEGS * 1000, "so does the UDP length");
});
