// Oracle: Wireshark's dissectors, which nobody on the team wrote, must read our
// encoders' output with the fields we set, good checksums, and nothing malformed.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapWriter } from "../../src/capture/pcap.js";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from "../../src/encap/ipv4.js";
import { VXLAN_PORT_IANA, VXLAN_PORT_LINUX } from "../../src/encap/vxlan.js";
import {
  DfPolicy,
  fragNeededFrame,
  ipipFrame,
  outer,
  vxlanArpFrame,
  vxlanL3Frame,
} from "../fixtures/packets.js";
import { all, type Json, problems, TSHARK_SKIP as SKIP, tshark } from "../fixtures/tshark.js";

t.test("tshark dissects our encoders' output", { skip: SKIP }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-tshark-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const w = new PcapWriter(LINKTYPE_ETHERNET);
  w.add(vxlanArpFrame(42, outer(VXLAN_PORT_IANA, 40001, false)));
  w.add(vxlanL3Frame(IPPROTO_ICMP, 56, 1, outer(VXLAN_PORT_LINUX, 40002, true)));
  w.add(vxlanL3Frame(IPPROTO_TCP, 100, 0xabcdef, outer(VXLAN_PORT_IANA, 40003, true)));
  w.add(vxlanL3Frame(IPPROTO_UDP, 30, 7, outer(VXLAN_PORT_LINUX, 40004, false)));
  w.add(ipipFrame(IPPROTO_ICMP, 56, 64, DfPolicy.Copy));
  w.add(ipipFrame(IPPROTO_TCP, 100, 33, DfPolicy.Clear));
  w.add(ipipFrame(IPPROTO_UDP, 30, 64, DfPolicy.Set));
  w.add(fragNeededFrame(1400));
  const file = join(dir, "eth.pcap");
  w.writeFile(file);
  const p = tshark(file);
  t.equal(p.length, 8);
  for (const [i, l] of p.entries()) t.same(problems(l), [], `frame ${i + 1} clean`);
  t.ok(
    p.every((l) => all(l, "ip.checksum.status").length > 0),
    "checksum validation is on",
  );

  const first = (l: Json, k: string) => all(l, k)[0];

  // 1: VXLAN/4789 + ARP
  t.same(all(p[0], "udp.dstport"), ["4789"]);
  t.equal(first(p[0], "vxlan.vni"), "42");
  t.equal(first(p[0], "vxlan.flag_i"), "1");
  t.equal(first(p[0], "vxlan.flags"), "0x0800", "only I set");
  t.equal(first(p[0], "vxlan.flags_reserved"), "0x0000");
  t.equal(first(p[0], "vxlan.reserved8"), "0");
  t.equal(first(p[0], "udp.checksum"), "0x0000");
  t.equal(first(p[0], "arp.opcode"), "1");
  t.equal(first(p[0], "arp.src.proto_ipv4"), "10.244.1.2");
  t.equal(first(p[0], "arp.dst.proto_ipv4"), "10.244.2.3");
  t.equal(first(p[0], "arp.src.hw_mac"), "0e:00:00:00:00:01");

  // 2: VXLAN/8472 + ICMP echo (UDP checksum on)
  t.same(all(p[1], "udp.dstport"), ["8472"]);
  t.same(all(p[1], "udp.srcport"), ["40002"]);
  t.equal(first(p[1], "udp.checksum.status"), "1");
  t.equal(first(p[1], "vxlan.vni"), "1");
  t.same(all(p[1], "eth.src"), ["02:00:00:00:00:aa", "0e:00:00:00:00:01"]);
  t.same(all(p[1], "eth.dst"), ["02:00:00:00:00:bb", "0e:00:00:00:00:02"]);
  t.same(all(p[1], "ip.src"), ["198.18.0.1", "10.244.1.2"]);
  t.same(all(p[1], "ip.dst"), ["198.18.0.2", "10.244.2.3"]);
  t.same(all(p[1], "ip.proto"), ["17", "1"]);
  t.same(all(p[1], "ip.flags.df"), ["1", "1"]);
  t.equal(first(p[1], "icmp.type"), "8");
  t.equal(first(p[1], "icmp.ident"), "16962");
  t.equal(first(p[1], "icmp.seq"), "3");

  // 3: VXLAN/4789 + TCP, 24-bit VNI
  t.equal(first(p[2], "vxlan.vni"), String(0xabcdef));
  t.equal(first(p[2], "tcp.srcport"), "43210");
  t.equal(first(p[2], "tcp.dstport"), "80");
  t.equal(first(p[2], "tcp.len"), "100");

  // 4: VXLAN/8472 + UDP
  t.same(all(p[3], "udp.dstport"), ["8472", "30001"]);
  t.same(all(p[3], "udp.srcport"), ["40004", "30000"]);
  t.same(all(p[3], "udp.checksum.status"), ["3", "1"], "outer none, inner good");

  // 5-7: IPIP
  t.same(all(p[4], "ip.proto"), ["4", "1"]);
  t.same(all(p[4], "ip.src"), ["198.18.0.1", "10.244.1.2"]);
  t.same(all(p[4], "ip.ttl"), ["64", "64"]);
  t.same(all(p[4], "ip.flags.df"), ["1", "1"], "DF copied");
  t.equal(first(p[4], "ip.id"), "0x0063");
  t.equal(first(p[4], "icmp.type"), "8");
  t.same(all(p[5], "ip.ttl"), ["33", "64"]);
  t.same(all(p[5], "ip.flags.df"), ["0", "1"], "DF cleared");
  t.equal(first(p[5], "tcp.dstport"), "80");
  t.same(all(p[6], "ip.flags.df"), ["1", "1"]);
  t.equal(first(p[6], "udp.dstport"), "30001");

  // 8: frag-needed quoting the offender
  t.equal(first(p[7], "icmp.type"), "3");
  t.equal(first(p[7], "icmp.code"), "4");
  t.equal(first(p[7], "icmp.mtu"), "1400");
  t.same(all(p[7], "ip.src"), ["10.244.1.1", "10.244.1.2"]);
  t.same(all(p[7], "ip.dst"), ["10.244.1.2", "10.244.2.3"]);
  t.equal(all(p[7], "ip.len")[1], "1400", "quoted header keeps the original length");
  t.equal(first(p[7], "ip.dsfield"), "0xc0");
  t.end();
});

t.test("tshark reads LINKTYPE_RAW IPIP", { skip: SKIP }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-tshark-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const w = new PcapWriter(LINKTYPE_RAW);
  const f = ipipFrame(IPPROTO_UDP, 10, 64, DfPolicy.Copy);
  w.add(f, 14);
  const file = join(dir, "raw.pcap");
  w.writeFile(file);
  const p = tshark(file);
  t.equal(p.length, 1);
  t.same(problems(p[0]), [], "raw frame clean");
  t.same(all(p[0], "ip.proto"), ["4", "17"]);
  t.same(all(p[0], "eth.src"), []);
  t.end();
});

t.test("the oracle is live: a corrupted checksum is reported", { skip: SKIP }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-tshark-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const w = new PcapWriter(LINKTYPE_ETHERNET);
  const f = Buffer.from(ipipFrame(IPPROTO_UDP, 10, 64, DfPolicy.Copy));
  f[14 + 11] ^= 0xff; // outer IPv4 checksum
  w.add(f);
  const file = join(dir, "bad.pcap");
  w.writeFile(file);
  t.not(problems(tshark(file)[0]).length, 0);
  t.end();
});
