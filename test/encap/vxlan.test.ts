import t from "tap";
import { parseIpv4, parseMac } from "../../src/encap/addr.js";
import { Drop } from "../../src/encap/drop.js";
import { ETHERTYPE_IPV6, ethernetParse, newEthernetInfo } from "../../src/encap/ethernet.js";
import {
  newOuterInfo,
  newOuterParams,
  outerDecapUdp,
  outerEncapUdp,
} from "../../src/encap/outer.js";
import {
  newVxlanInfo,
  VXLAN_L3_HEADROOM,
  VXLAN_OVERHEAD,
  VXLAN_PORT_LINUX,
  VXLAN_SPORT_MAX,
  VXLAN_SPORT_MIN,
  vxlanDecap,
  vxlanEncapL2,
  vxlanEncapL3,
  vxlanEncapL3Template,
  vxlanFlowHash,
  vxlanSourcePort,
  vxlanWriteL3Template,
} from "../../src/encap/vxlan.js";
import { hex, place, toHex } from "../fixtures/hex.js";

// scapy: Ether(02:..:aa -> 02:..:bb)/IP(198.18.0.1 -> 198.18.0.2, DF, id 0)/
//   UDP(40000 -> 8472)/VXLAN(flags=8, vni=1)/Ether(0e:..:01 -> 0e:..:02)/
//   IP(10.244.1.2 -> 10.244.2.3, id 7)/ICMP(id=1, seq=1)
const INNER_IP = hex("4500001c 0007 0000 40 01 61ee 0af40102 0af40203 0800 f7fd 0001 0001");
const FRAME = hex(`
  0200000000bb 0200000000aa 0800
  4500004e 0000 4000 40 11 ae77 c6120001 c6120002
  9c40 2118 003a 88f6
  08 000000 000001 00
  0e0000000002 0e0000000001 0800`);
const FULL = Buffer.concat([FRAME, INNER_IP]);

const VTEP_A = parseMac("0e:00:00:00:00:01")!;
const VTEP_B = parseMac("0e:00:00:00:00:02")!;

function outerParams() {
  const p = newOuterParams();
  p.srcMac = parseMac("02:00:00:00:00:aa")!;
  p.dstMac = parseMac("02:00:00:00:00:bb")!;
  p.srcIp = parseIpv4("198.18.0.1")!;
  p.dstIp = parseIpv4("198.18.0.2")!;
  p.srcPort = 40000;
  p.dstPort = VXLAN_PORT_LINUX;
  p.df = true;
  p.udpChecksum = true;
  return p;
}

t.test("construct: L3 encap + outer headers equal scapy's frame", (t) => {
  const b = place(INNER_IP, 64);
  const off = vxlanEncapL3(b, 64, INNER_IP.length, 1, VTEP_A, VTEP_B);
  t.equal(off, 64 - VXLAN_L3_HEADROOM);
  const start = outerEncapUdp(b, off, INNER_IP.length + VXLAN_L3_HEADROOM, outerParams());
  t.equal(start, 0);
  t.equal(toHex(b), toHex(FULL));
  t.equal(FULL.length - INNER_IP.length - 14, VXLAN_OVERHEAD, "overhead excludes inner Ethernet");
  t.end();
});

t.test("construct: L3 encap from a per-peer template gives the same bytes", (t) => {
  const tpl = Buffer.alloc(30);
  vxlanWriteL3Template(tpl, 3, 1, VTEP_A, VTEP_B);
  const b = place(INNER_IP, 64);
  t.equal(vxlanEncapL3Template(b, 64, INNER_IP.length, tpl, 3), 42);
  t.equal(toHex(b, 42), toHex(FULL, 42));
  const six = place(hex("6000000000081140"), 22, 32);
  t.equal(vxlanEncapL3Template(six, 22, 40, tpl, 3), 0);
  t.equal(six.readUInt16BE(20), ETHERTYPE_IPV6);
  const tight = place(hex("6000000000081140"), 21, 32);
  t.equal(vxlanEncapL3Template(tight, 21, 40, tpl, 3), -Drop.NoHeadroom);
  t.end();
});

t.test("construct: L2 encap writes only the VXLAN header", (t) => {
  const inner = FULL.subarray(50);
  const b = place(inner, 8);
  t.equal(vxlanEncapL2(b, 8, 1), 0);
  t.equal(toHex(b), toHex(FULL, 42));
  t.end();
});

t.test("deconstruct the full frame", (t) => {
  const o = newOuterInfo();
  t.equal(outerDecapUdp(FULL, 0, FULL.length, o), Drop.None);
  t.equal(o.udp.srcPort, 40000);
  t.equal(o.udp.dstPort, 8472);
  t.equal(o.ip.df, true);
  const v = newVxlanInfo();
  t.equal(vxlanDecap(FULL, o.payloadOff, o.payloadLen, v), Drop.None);
  t.same(v, { flags: 8, vni: 1, innerOff: 50, innerLen: 42 });
  const e = newEthernetInfo();
  t.equal(ethernetParse(FULL, v.innerOff, v.innerLen, e), Drop.None);
  t.equal(e.src, VTEP_A);
  t.equal(e.dst, VTEP_B);
  t.end();
});

t.test("24-bit VNI; reserved bits ignored on receive", (t) => {
  const b = place(FULL.subarray(50), 8);
  vxlanEncapL2(b, 8, 0xabcdef);
  t.equal(toHex(b, 0, 8), "08000000abcdef00");
  b[0] = 0xff; // every other flag bit set (e.g. scapy's GPE default 0x0c)
  b[1] = 0xff;
  b[3] = 0x03;
  b[7] = 0xff;
  const v = newVxlanInfo();
  t.equal(vxlanDecap(b, 0, b.length, v), Drop.None);
  t.equal(v.vni, 0xabcdef);
  t.end();
});

t.test("drops", (t) => {
  const v = newVxlanInfo();
  const b = Buffer.from(FULL.subarray(42));
  t.equal(vxlanDecap(b, 0, 21, v), Drop.VxlanTruncated, "no room for the inner Ethernet header");
  b[0] = 0;
  t.equal(vxlanDecap(b, 0, b.length, v), Drop.VxlanBadFlags);
  b[0] = 0xf7;
  t.equal(vxlanDecap(b, 0, b.length, v), Drop.VxlanBadFlags, "I bit missing");
  t.end();
});

t.test("encap errors are negative drop codes", (t) => {
  const b = place(INNER_IP, 10);
  t.equal(vxlanEncapL3(b, 10, INNER_IP.length, 1, 1, 2), -Drop.NoHeadroom);
  t.equal(vxlanEncapL2(b, 7, 1), -Drop.NoHeadroom);
  b[10] = 0x25;
  t.equal(vxlanEncapL3(b, 10, INNER_IP.length, 1, 1, 2), -Drop.Ipv4BadVersion);
  const six = place(hex("6000000000081140"), 22, 32);
  t.equal(vxlanEncapL3(six, 22, 40, 1, 1, 2), 0);
  t.equal(six.readUInt16BE(8 + 12), ETHERTYPE_IPV6, "IPv6 ethertype from the version nibble");
  t.end();
});

function udpFrame(src: string, dst: string, sport: number, dport: number, flags = 0): Buffer {
  const b = Buffer.alloc(14 + 28);
  b.writeUInt16BE(0x0800, 12);
  b.set(hex("4500001c 0000 0000 40 11 0000"), 14);
  b.writeUInt16BE(flags, 20);
  b.writeUInt32BE(parseIpv4(src)!, 26);
  b.writeUInt32BE(parseIpv4(dst)!, 30);
  b.writeUInt16BE(sport, 34);
  b.writeUInt16BE(dport, 36);
  return b;
}

t.test("source port: stable per flow, symmetric, in range, spread", (t) => {
  const f = udpFrame("10.244.1.2", "10.244.2.3", 5000, 53);
  const p = vxlanSourcePort(f, 0, f.length, VXLAN_SPORT_MIN, VXLAN_SPORT_MAX);
  t.ok(p >= VXLAN_SPORT_MIN && p <= VXLAN_SPORT_MAX);
  t.equal(vxlanSourcePort(Buffer.from(f), 0, f.length, VXLAN_SPORT_MIN, VXLAN_SPORT_MAX), p);
  const r = udpFrame("10.244.2.3", "10.244.1.2", 53, 5000);
  t.equal(vxlanFlowHash(r, 0, r.length), vxlanFlowHash(f, 0, f.length), "both directions");
  const g = udpFrame("10.244.1.2", "10.244.2.3", 5001, 53);
  t.not(vxlanFlowHash(g, 0, g.length), vxlanFlowHash(f, 0, f.length), "ports count");
  const frag = udpFrame("10.244.1.2", "10.244.2.3", 5000, 53, 0x2000);
  const frag2 = udpFrame("10.244.1.2", "10.244.2.3", 9999, 9999, 0x0010);
  t.equal(vxlanFlowHash(frag, 0, 42), vxlanFlowHash(frag2, 0, 42), "fragments hash on addresses");
  const seen = new Set<number>();
  const counts = new Array(8).fill(0);
  for (let i = 0; i < 4000; i++) {
    const x = udpFrame("10.244.1.2", "10.244.2.3", 1024 + i, 80);
    const port = vxlanSourcePort(x, 0, x.length, 1000, 1007);
    counts[port - 1000]++;
    seen.add(vxlanSourcePort(x, 0, x.length, VXLAN_SPORT_MIN, VXLAN_SPORT_MAX));
  }
  // 4000 flows into 28231 ports: ~3720 distinct expected (birthday collisions).
  t.ok(seen.size > 3600, `distinct ports ${seen.size}`);
  t.ok(Math.min(...counts) > 350, `buckets ${counts}`);
  const arp = FULL.subarray(50, 64);
  const h1 = vxlanFlowHash(arp, 0, 14);
  t.equal(typeof h1, "number");
  t.equal(vxlanSourcePort(arp, 0, 3, 10, 10), 10, "degenerate range and runt frame");
  t.end();
});
