// Oracle: scapy (Debian python3-scapy, which nobody on the team wrote) builds packets;
// our decoders must read back the fields it was told to set.

import t from "tap";
import { formatIpv4, formatMac, readIpv4 } from "../../src/encap/addr.js";
import { arpParse, newArpInfo } from "../../src/encap/arp.js";
import { read16 } from "../../src/encap/bytes.js";
import { Drop } from "../../src/encap/drop.js";
import { ETHERTYPE_ARP, ethernetParse, newEthernetInfo } from "../../src/encap/ethernet.js";
import { icmpParse, newIcmpInfo } from "../../src/encap/icmp.js";
import { ipipDecap, newIpipInfo } from "../../src/encap/ipip.js";
import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_DST,
  IPV4_SRC,
  IPV4_TOTAL_LEN,
  ipv4Parse,
  ipv4PseudoHeaderSum,
  newIpv4Info,
} from "../../src/encap/ipv4.js";
import { newOuterInfo, outerDecapUdp } from "../../src/encap/outer.js";
import { newTcpInfo, tcpChecksumOk, tcpParse } from "../../src/encap/tcp.js";
import { newUdpInfo, udpChecksumOk, udpParse } from "../../src/encap/udp.js";
import { newVxlanInfo, vxlanDecap } from "../../src/encap/vxlan.js";

// Debian's scapy lives under the system interpreter, not the pyenv python3 on PATH.

const SCRIPT = `
import json, logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import Ether, Dot1Q, ARP, IP, UDP, TCP, ICMP, Raw, IPOption_RR
from scapy.layers.vxlan import VXLAN
inner = Ether(src="0e:00:00:00:00:01", dst="0e:00:00:00:00:02")/IP(src="10.244.1.2", dst="10.244.2.3", ttl=61, id=77)/ICMP(id=9, seq=4)/Raw(b"ping"*8)
out = Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb")/IP(src="198.18.0.1", dst="198.18.0.2", flags="DF")
big = IP(src="10.244.1.2", dst="10.244.2.3", id=5, flags="DF")/UDP(sport=1111, dport=2222)/Raw(b"z"*1472)
p = {
  "vxlan4789": out/UDP(sport=51000, dport=4789)/VXLAN(flags=0x08, vni=0x123456)/inner,
  "vxlan8472_gpe_bits": out/UDP(sport=51001, dport=8472)/VXLAN(vni=1)/inner,
  "ipip_tcp": IP(src="198.18.0.1", dst="198.18.0.2", ttl=17, tos=0x28)/IP(src="10.244.1.2", dst="10.244.2.3")/TCP(sport=33000, dport=443, flags="SA"),
  "frag_needed": IP(src="10.244.1.1", dst="10.244.1.2")/ICMP(type=3, code=4, nexthopmtu=1450)/Raw(bytes(big)[:28]),
  "time_exceeded": IP(src="10.244.1.1", dst="10.244.1.2")/ICMP(type=11, code=0)/Raw(bytes(big)[:28]),
  "arp_vlan": Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff")/Dot1Q(vlan=42, prio=3)/ARP(op=1, hwsrc="02:00:00:00:00:01", psrc="10.244.1.2", pdst="10.244.1.1"),
  "arp_reply": Ether()/ARP(op=2, hwsrc="02:00:00:00:00:09", psrc="10.244.1.1", hwdst="02:00:00:00:00:01", pdst="10.244.1.2"),
  "udp_csum": IP(src="10.0.0.1", dst="10.0.0.2")/UDP(sport=7, dport=9)/Raw(b"odd"),
  "ip_options": IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_RR()])/UDP(sport=7, dport=9),
  "fragment": IP(src="10.0.0.1", dst="10.0.0.2", flags="MF", frag=100, proto=17)/Raw(b"x"*16),
}
print(json.dumps({k: bytes(v).hex() for k, v in p.items()}))
`;

import { scapyPackets } from "../fixtures/scapy.js";

const { skip: SKIP, pk } = scapyPackets(SCRIPT);

t.test("VXLAN built by scapy", { skip: SKIP }, (t) => {
  for (const [name, port, vni] of [
    ["vxlan4789", 4789, 0x123456],
    ["vxlan8472_gpe_bits", 8472, 1],
  ] as const) {
    const b = pk[name];
    const o = newOuterInfo();
    t.equal(outerDecapUdp(b, 0, b.length, o), Drop.None, name);
    t.equal(o.udp.dstPort, port);
    t.equal(formatIpv4(o.ip.src), "198.18.0.1");
    t.equal(o.ip.df, true);
    const v = newVxlanInfo();
    t.equal(vxlanDecap(b, o.payloadOff, o.payloadLen, v), Drop.None);
    t.equal(v.vni, vni);
    const e = newEthernetInfo();
    t.equal(ethernetParse(b, v.innerOff, v.innerLen, e), Drop.None);
    t.equal(formatMac(e.src), "0e:00:00:00:00:01");
    const ip = newIpv4Info();
    t.equal(ipv4Parse(b, e.payloadOff, e.payloadLen, ip), Drop.None);
    t.equal(ip.ttl, 61);
    t.equal(ip.id, 77);
    t.equal(formatIpv4(ip.dst), "10.244.2.3");
    const m = newIcmpInfo();
    t.equal(icmpParse(b, ip.payloadOff, ip.payloadLen, m), Drop.None);
    t.same([m.type, m.id, m.seq, m.dataLen], [8, 9, 4, 32]);
  }
  t.end();
});

t.test("IPIP built by scapy", { skip: SKIP }, (t) => {
  const b = pk.ipip_tcp;
  const r = newIpipInfo();
  t.equal(ipipDecap(b, 0, b.length, r), Drop.None);
  t.equal(r.outer.ttl, 17);
  t.equal(r.outer.tos, 0x28);
  t.equal(formatIpv4(r.inner.src), "10.244.1.2");
  t.equal(r.inner.protocol, 6);
  const s = newTcpInfo();
  t.equal(tcpParse(b, r.inner.payloadOff, r.inner.payloadLen, s), Drop.None);
  t.same([s.srcPort, s.dstPort, s.flags], [33000, 443, 0x12]);
  const tcpLen = r.inner.payloadLen;
  const pseudo = ipv4PseudoHeaderSum(b, r.innerOff, IPPROTO_TCP, tcpLen);
  t.ok(tcpChecksumOk(b, r.inner.payloadOff, tcpLen, pseudo));
  t.end();
});

t.test("ICMP errors built by scapy", { skip: SKIP }, (t) => {
  for (const [name, type, code, mtu] of [
    ["frag_needed", 3, 4, 1450],
    ["time_exceeded", 11, 0, 0],
  ] as const) {
    const b = pk[name];
    const ip = newIpv4Info();
    t.equal(ipv4Parse(b, 0, b.length, ip), Drop.None);
    const m = newIcmpInfo();
    t.equal(icmpParse(b, ip.payloadOff, ip.payloadLen, m), Drop.None, name);
    t.same([m.type, m.code, m.mtu, m.dataLen], [type, code, mtu, 28]);
    // The quote: the offender's header, which says 1500 bytes though 28 are here.
    t.equal(read16(b, m.dataOff + IPV4_TOTAL_LEN), 1500);
    t.equal(formatIpv4(readIpv4(b, m.dataOff + IPV4_SRC)), "10.244.1.2");
    t.equal(formatIpv4(readIpv4(b, m.dataOff + IPV4_DST)), "10.244.2.3");
    t.equal(ipv4Parse(b, m.dataOff, m.dataLen, newIpv4Info()), Drop.Ipv4Truncated);
  }
  t.end();
});

t.test("ARP and 802.1Q built by scapy", { skip: SKIP }, (t) => {
  let b = pk.arp_vlan;
  const e = newEthernetInfo();
  t.equal(ethernetParse(b, 0, b.length, e), Drop.None);
  t.same([e.vlan, e.pcp, e.ethertype], [42, 3, ETHERTYPE_ARP]);
  const a = newArpInfo();
  t.equal(arpParse(b, e.payloadOff, e.payloadLen, a), Drop.None);
  t.equal(a.op, 1);
  t.equal(formatMac(a.sha), "02:00:00:00:00:01");
  t.equal(formatIpv4(a.tpa), "10.244.1.1");
  b = pk.arp_reply;
  t.equal(ethernetParse(b, 0, b.length, e), Drop.None);
  t.equal(e.vlan, -1);
  t.equal(arpParse(b, e.payloadOff, e.payloadLen, a), Drop.None);
  t.same(
    [a.op, formatMac(a.sha), formatIpv4(a.spa), formatMac(a.tha), formatIpv4(a.tpa)],
    [2, "02:00:00:00:00:09", "10.244.1.1", "02:00:00:00:00:01", "10.244.1.2"],
  );
  t.end();
});

t.test("IPv4 details built by scapy", { skip: SKIP }, (t) => {
  const ip = newIpv4Info();
  let b = pk.udp_csum;
  t.equal(ipv4Parse(b, 0, b.length, ip), Drop.None);
  const u = newUdpInfo();
  t.equal(udpParse(b, ip.payloadOff, ip.payloadLen, u), Drop.None);
  t.same([u.srcPort, u.dstPort, u.payloadLen], [7, 9, 3]);
  t.not(u.checksum, 0);
  const pseudo = ipv4PseudoHeaderSum(b, 0, IPPROTO_UDP, u.length);
  t.ok(udpChecksumOk(b, ip.payloadOff, u.length, pseudo), "odd-length checksum");
  b = pk.ip_options;
  t.equal(ipv4Parse(b, 0, b.length, ip), Drop.None);
  t.ok(ip.hdrLen > 20, `options: IHL ${ip.hdrLen}`);
  t.equal(udpParse(b, ip.payloadOff, ip.payloadLen, u), Drop.None);
  t.equal(u.dstPort, 9);
  b = pk.fragment;
  t.equal(ipv4Parse(b, 0, b.length, ip), Drop.None);
  t.same([ip.mf, ip.fragOff, ip.protocol], [true, 800, 17]);
  t.end();
});
