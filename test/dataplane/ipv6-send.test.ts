// IPv6 from the TUN in vxlan mode, without namespaces: the real Forwarder (rig) gets
// scapy-built packets; tshark dissects what it sends to the underlay (outer IPv4/UDP,
// VXLAN, inner Ethernet with ethertype 0x86DD) and the Packet Too Big it writes back
// into the TUN; hostile or unroutable packets are dropped under their own names.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { LINKTYPE_RAW, PcapWriter } from "../../src/capture/pcap.js";
import { type ForwarderOptions, INHERIT, MODE_IPIP } from "../../src/dataplane/forwarder.js";
import { ICMP6_PACKET_TOO_BIG, icmp6Parse, newIcmp6Info } from "../../src/encap/icmp6.js";
import { ipv6Parse, newIpv6Info } from "../../src/encap/ipv6.js";
import { Batch } from "../../src/io/batch.js";
import {
  newVnetHeader,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_LEN,
  vnetWrite,
} from "../../src/tun/vnet.js";
import { forwarderRig, NODE_B } from "../fixtures/forwarder-rig.js";
import { all, problems, TSHARK_SKIP, tshark } from "../fixtures/tshark.js";

const SCRIPT = `
import json, logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import IP, IPv6, ICMPv6EchoRequest, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, UDP, TCP, Raw, Jumbo
A, B = "fd00:0:0:1::1", "fd00:0:0:2::1"
p = {
  "echo": IPv6(src=A, dst=B, hlim=61, tc=0xb8)/ICMPv6EchoRequest(id=7, seq=1, data=b"hi"*20),
  "tcp": IPv6(src=A, dst=B)/TCP(sport=40000, dport=5201, flags="S"),
  "udp_behind_destopt": IPv6(src=A, dst=B)/IPv6ExtHdrDestOpt()/UDP(sport=1, dport=2)/Raw(b"x"*30),
  "fits": IPv6(src=A, dst=B)/UDP(sport=1, dport=2)/Raw(b"f"*(1450-48)),
  "too_big": IPv6(src=A, dst=B)/UDP(sport=1, dport=2)/Raw(b"b"*(1451-48)),
  "jumbogram": IPv6(src=A, dst=B, plen=0)/IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=70000)])/UDP(sport=1, dport=2)/Raw(b"x"*8),
  "no_route": IPv6(src=A, dst="fd00:0:0:9::1")/UDP(sport=1, dport=2),
  "no_neigh": IPv6(src=A, dst="fd00:0:0:3::1")/UDP(sport=1, dport=2),
  "to_sit": IPv6(src=A, dst="fd00:0:0:4::1", hlim=33)/ICMPv6EchoRequest(id=9, seq=2, data=b"6in4"),
  "sit_in": IP(src="198.18.0.2", dst="198.18.0.1")/IPv6(src="fd00:0:0:4::1", dst=A)/ICMPv6EchoRequest(id=9, seq=3),
  "sit_bad_inner": IP(src="198.18.0.2", dst="198.18.0.1", proto=41)/Raw(bytes(IPv6(src=B, dst=A)/UDP())[:30]),
  "gre": IP(src="198.18.0.2", dst="198.18.0.1", proto=47)/Raw(b"x"*40),
  "tso6": IPv6(src=A, dst=B)/TCP(sport=40000, dport=5201, seq=1, flags="A", window=512, chksum=0)/Raw(bytes(range(256))*40),
  "uso6": IPv6(src=A, dst=B)/UDP(sport=40000, dport=4433, chksum=0)/Raw(b"u"*(12*1000)),
}
out = {k: bytes(v).hex() for k, v in p.items()}
out["truncated"] = bytes(p["echo"])[:50].hex()
out["short"] = bytes(p["echo"])[:30].hex()
print(json.dumps(out))
`;

import { scapyPackets } from "../fixtures/scapy.js";

const { skip: SKIP, pk } = scapyPackets(SCRIPT);

/**
 * The rig (vxlan mode, or `opts`) with the packets `names` read from the TUN in one
 * batch (plain vnet headers). Routes beyond the rig's: fd00:0:0:3::/64 via a gateway
 * without a neighbour entry, fd00:0:0:4::/64 to NODE_B as an ipip remote.
 */
function send(names: string[], opts: Partial<ForwarderOptions> = {}) {
  const rig = forwarderRig(opts);
  rig.routes6.replace("fd00:0:0:3::", 64, { gateway: "fd00:0:0:3::", onlink: true });
  rig.routes6.replace("fd00:0:0:4::", 64, { remote: NODE_B });
  rig.fwd.setTables6(rig.routes6, rig.neigh6);
  rig.counted.keep = true;
  const dev = new Batch(64);
  for (const n of names) {
    const slot = rig.slab.alloc();
    const at = rig.slab.dataOffset(slot);
    rig.u8.fill(0, at - VNET_LEN, at);
    rig.u8.set(pk[n], at);
    dev.push(slot, at, pk[n].length);
  }
  rig.fwd.fromDevice(dev);
  return { rig, snap: rig.stats.snapshot() };
}

t.test("IPv6 packets leave as VXLAN over IPv4, ethertype 0x86DD", { skip: SKIP }, async (t) => {
  const names = ["echo", "tcp", "udp_behind_destopt", "fits"];
  const { rig, snap } = send(names);
  t.equal(rig.stats.totalDrops(), 0, "nothing dropped");
  t.equal(snap.counters.encap_packets, names.length, "each encapsulated");
  const out = rig.counted.underlay;
  t.equal(out.length, names.length, "each sent to the underlay");
  for (const [i, b] of out.entries()) {
    t.equal(b.readUInt16BE(28 + 8 + 12), 0x86dd, `${names[i]}: inner ethertype IPv6`);
    t.same(b.subarray(28 + 8 + 14), pk[names[i]], `${names[i]}: the packet, byte for byte`);
  }
  t.equal(out[0][1], 0xb8, "outer TOS inherited from the traffic class (rig: tos inherit)");
  t.equal(out[0][8], 64, "outer TTL as configured (rig: ttl 64)");

  t.test("tshark finds them clean", { skip: TSHARK_SKIP }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "vxtun-ipv6-send-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const w = new PcapWriter(LINKTYPE_RAW);
    for (const b of out) w.add(b, 0, b.length);
    const file = join(dir, "out.pcap");
    w.writeFile(file);
    const p = tshark(file);
    t.equal(p.length, names.length);
    for (const [i, l] of p.entries()) {
      t.same(problems(l), [], `${names[i]}: clean`);
      t.same(all(l, "eth.type"), ["0x86dd"], `${names[i]}: inner Ethernet carries IPv6`);
      t.same(all(l, "ipv6.dst"), ["fd00:0:0:2::1"]);
      t.same(all(l, "eth.dst"), ["02:00:00:00:02:01"], "to the gateway's VTEP MAC");
      t.same(all(l, "ip.dst"), ["198.18.0.2"], "to its node");
    }
    t.same(all(p[0], "icmpv6.checksum.status"), ["1"], "inner ICMPv6 checksum intact");
    t.same(all(p[1], "tcp.checksum.status"), ["1"], "inner TCP checksum intact");
  });
});

t.test("too big for the tunnel: a Packet Too Big into the TUN", { skip: SKIP }, async (t) => {
  const { rig, snap } = send(["too_big"]);
  t.equal(snap.drops.too_big, 1, "the packet is dropped as too_big");
  t.equal(snap.counters.icmp6_too_big_sent, 1, "counted: icmp6_too_big_sent");
  t.equal(rig.counted.underlay.length, 0, "nothing sent (IPv6 is not fragmented on the way)");
  t.equal(rig.counted.device.length, 1, "one packet back to the TUN");
  const b = rig.counted.device[0].subarray(VNET_LEN);
  const ip = newIpv6Info();
  t.equal(ipv6Parse(b, 0, b.length, ip), 0, "a valid IPv6 packet");
  const m = newIcmp6Info();
  t.equal(icmp6Parse(b, 0, ip.totalLen, m), 0, "a valid ICMPv6 message (checksum)");
  t.equal(m.type, ICMP6_PACKET_TOO_BIG);
  t.equal(m.mtu, 1450, "announcing the tunnel MTU");
  t.equal(ip.totalLen, 1280, "quoting as much as fits the IPv6 minimum MTU");

  t.test("tshark reads it as Packet Too Big", { skip: TSHARK_SKIP }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "vxtun-ipv6-ptb-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const w = new PcapWriter(LINKTYPE_RAW);
    w.add(b, 0, b.length);
    const file = join(dir, "ptb.pcap");
    w.writeFile(file);
    const [l] = tshark(file);
    t.same(problems(l), []);
    t.same(all(l, "icmpv6.type").slice(0, 1), ["2"]);
    t.same(all(l, "icmpv6.mtu"), ["1450"]);
    t.same(all(l, "ipv6.src").slice(0, 1), ["fd00:0:0:2::"], "from the route's gateway");
    t.same(all(l, "ipv6.dst").slice(0, 1), ["fd00:0:0:1::1"], "to the sender");
  });
});

t.test("hostile and unroutable IPv6 is dropped by name", { skip: SKIP }, async (t) => {
  const { rig, snap } = send(["jumbogram", "truncated", "short", "no_route", "no_neigh"]);
  t.equal(snap.drops.ipv6_jumbogram, 1, "jumbogram refused");
  t.equal(snap.drops.ipv6_truncated, 2, "payload length past the end; shorter than a header");
  t.equal(snap.drops.no_route, 1, "no IPv6 route");
  t.equal(snap.drops.no_neigh, 1, "a route whose gateway has no neighbour entry");
  t.equal(rig.stats.totalDrops(), 5, "nothing else");
  t.equal(rig.counted.underlay.length + rig.counted.device.length, 0, "nothing sent");
});

t.test(
  "vxlan mode: IPv6 from the underlay is checked; hostile packets dropped by name",
  { skip: SKIP },
  async (t) => {
    const rig = forwarderRig();
    rig.counted.keep = true;
    const rx = new Batch(64);
    for (const n of ["echo", "jumbogram", "truncated", "short"]) {
      const slot = rig.slab.alloc();
      const at = rig.slab.dataOffset(slot);
      // VXLAN (flags I, VNI 1), then an Ethernet header with ethertype IPv6.
      const frame = Buffer.concat([
        Buffer.from("0800000000000100", "hex"),
        Buffer.from("02000000010102000000020186dd", "hex"),
        pk[n],
      ]);
      rig.u8.set(frame, at);
      rx.push(slot, at, frame.length, NODE_B, 8472);
    }
    rig.fwd.fromUnderlay(rx);
    const snap = rig.stats.snapshot();
    t.equal(snap.counters.decap_packets, 1, "one decapsulated");
    t.same(
      rig.counted.device.map((d) => d.subarray(VNET_LEN)),
      [pk.echo],
      "the good one reaches the TUN as sent",
    );
    t.equal(snap.drops.ipv6_jumbogram, 1, "jumbogram refused");
    t.equal(snap.drops.ipv6_truncated, 2, "payload length past the end; shorter than a header");
    t.equal(rig.stats.totalDrops(), 3, "nothing else");
  },
);

/** A pcap of `bufs` (raw IP) dissected by tshark. */
function dissect(t: { teardown(fn: () => void): void }, bufs: Uint8Array[]) {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-ipv6-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const w = new PcapWriter(LINKTYPE_RAW);
  for (const b of bufs) w.add(b, 0, b.length);
  const file = join(dir, "out.pcap");
  w.writeFile(file);
  return tshark(file);
}

t.test("ipip mode: IPv6 leaves as 6in4 (protocol 41)", { skip: SKIP }, async (t) => {
  const { rig, snap } = send(["to_sit"], { mode: MODE_IPIP, ttl: INHERIT });
  t.equal(rig.stats.totalDrops(), 0, "nothing dropped");
  t.equal(snap.counters.encap_packets, 1);
  const [b] = rig.counted.underlay;
  t.equal(b[9], 41, "outer protocol 41");
  t.equal(b[8], 33, "outer TTL inherited from the hop limit");
  t.same(b.subarray(20), pk.to_sit, "the IPv6 packet behind a 20-byte outer header");
  t.test("tshark finds it clean", { skip: TSHARK_SKIP }, async (t) => {
    const [l] = dissect(t, [b]);
    t.same(problems(l), []);
    t.same(all(l, "ip.proto"), ["41"]);
    t.same(all(l, "ip.dst"), ["198.18.0.2"]);
    t.same(all(l, "ipv6.dst"), ["fd00:0:0:4::1"]);
    t.same(all(l, "icmpv6.checksum.status"), ["1"]);
  });
});

t.test("ipip mode: 6in4 from the underlay goes to the TUN", { skip: SKIP }, async (t) => {
  const rig = forwarderRig({ mode: MODE_IPIP });
  rig.counted.keep = true;
  const rx = new Batch(64);
  for (const n of ["sit_in", "sit_bad_inner", "gre"]) {
    const slot = rig.slab.alloc();
    const at = rig.slab.dataOffset(slot);
    rig.u8.set(pk[n], at);
    rx.push(slot, at, pk[n].length, NODE_B, 0);
  }
  rig.fwd.fromUnderlay(rx);
  const snap = rig.stats.snapshot();
  t.equal(snap.counters.decap_packets, 1, "one decapsulated");
  t.same(
    rig.counted.device.map((d) => d.subarray(VNET_LEN)),
    [pk.sit_in.subarray(20)],
    "as sent",
  );
  t.equal(snap.drops.ipip_bad_inner, 1, "a truncated inner IPv6 header");
  t.equal(snap.drops.ipv4_bad_protocol, 1, "neither IPIP nor 6in4");
  t.equal(rig.stats.totalDrops(), 2, "nothing else");
});

t.test("TSO6/USO6 super-packets routed from the TUN", { skip: SKIP }, async (t) => {
  for (const [name, gsoType, hdr, size, csum] of [
    ["tso6", VNET_GSO_TCPV6, 60, 1000, 16],
    ["uso6", VNET_GSO_UDP_L4, 48, 1000, 6],
  ] as const) {
    const rig = forwarderRig();
    const inner: Buffer[] = [];
    rig.captureMessages((datagrams) => inner.push(...datagrams));
    const slot = rig.slab.alloc();
    const at = rig.slab.dataOffset(slot);
    rig.u8.set(pk[name], at);
    const h = newVnetHeader();
    h.flags = VNET_F_NEEDS_CSUM;
    h.gsoType = gsoType;
    h.hdrLen = hdr;
    h.gsoSize = size;
    h.csumStart = 40;
    h.csumOffset = csum;
    vnetWrite(rig.u8, at - VNET_LEN, h);
    const dev = new Batch(64);
    dev.push(slot, at, pk[name].length);
    rig.fwd.fromDevice(dev);
    const payload = pk[name].length - hdr;
    t.equal(rig.stats.totalDrops(), 0, `${name}: nothing dropped`);
    t.equal(inner.length, Math.ceil(payload / size), `${name}: cut at ${size} bytes`);
    t.ok(
      inner.every((d) => d.readUInt16BE(20) === 0x86dd),
      `${name}: every segment's inner ethertype is IPv6`,
    );
    t.test(`${name}: tshark finds every segment clean`, { skip: TSHARK_SKIP }, async (t) => {
      const p = dissect(
        t,
        inner.map((d) => d.subarray(22)),
      );
      const field = name === "tso6" ? "tcp.checksum.status" : "udp.checksum.status";
      for (const [i, l] of p.entries()) {
        t.same(problems(l), [], `segment ${i}`);
        t.same(all(l, field), ["1"], `segment ${i}: checksum good`);
      }
    });
  }
});
