// ICMPv6 and Neighbor Discovery: scapy (an oracle nobody on the team wrote) builds the
// solicitations, errors and hostile headers our decoders must accept or drop by name;
// tshark dissects the advertisements and Packet Too Big errors we write.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { LINKTYPE_RAW, PcapWriter } from "../../src/capture/pcap.js";
import { formatMac, parseMac } from "../../src/encap/addr.js";
import { formatIpv6, parseIpv6 } from "../../src/encap/addr6.js";
import { Drop, dropName } from "../../src/encap/drop.js";
import {
  ICMP6_PACKET_TOO_BIG,
  ICMP6_TIME_EXCEEDED,
  IPV6_MIN_MTU,
  icmp6Parse,
  icmp6WriteError,
  NDP_ADVERT_LEN,
  ndpParseSolicit,
  ndpWriteAdvert,
  newIcmp6ErrorParams,
  newIcmp6Info,
  newNdpSolicit,
} from "../../src/encap/icmp6.js";
import { IPV6_SRC, ipv6Parse, newIpv6Info } from "../../src/encap/ipv6.js";
import { all, problems, TSHARK_SKIP, tshark } from "../fixtures/tshark.js";

const SCRIPT = `
import json, logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import IPv6, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, ICMPv6PacketTooBig, ICMPv6EchoRequest, ICMPv6TimeExceeded, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, UDP, Raw, Jumbo
ns = IPv6(src="fd00:0:0:1::2", dst="ff02::1:ff00:1", hlim=255)/ICMPv6ND_NS(tgt="fd00:0:0:1::1")/ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:01:02")
big = IPv6(src="fd00:0:0:1::2", dst="fd00:0:0:2::3")/UDP(sport=40000, dport=40001)/Raw(b"z"*1400)
p = {
  "ns": ns,
  "ns_unicast_no_opt": IPv6(src="fd00:0:0:1::2", dst="fd00:0:0:1::1", hlim=255)/ICMPv6ND_NS(tgt="fd00:0:0:1::1"),
  "ns_dad": IPv6(src="::", dst="ff02::1:ff00:1", hlim=255)/ICMPv6ND_NS(tgt="fd00:0:0:1::1"),
  "ns_dad_with_lladdr": IPv6(src="::", dst="ff02::1:ff00:1", hlim=255)/ICMPv6ND_NS(tgt="fd00:0:0:1::1")/ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:01:02"),
  "ns_dad_not_solicited_node": IPv6(src="::", dst="ff02::1", hlim=255)/ICMPv6ND_NS(tgt="fd00:0:0:1::1"),
  "ns_hop_64": IPv6(src="fd00:0:0:1::2", dst="ff02::1:ff00:1", hlim=64)/ICMPv6ND_NS(tgt="fd00:0:0:1::1"),
  "ns_multicast_target": IPv6(src="fd00:0:0:1::2", dst="ff02::1:ff00:1", hlim=255)/ICMPv6ND_NS(tgt="ff02::1"),
  "ns_zero_len_opt": IPv6(src="fd00:0:0:1::2", dst="ff02::1:ff00:1", hlim=255)/ICMPv6ND_NS(tgt="fd00:0:0:1::1")/Raw(b"\\x01\\x00\\x02\\x00\\x00\\x00\\x01\\x02"),
  "ns_behind_hbh": IPv6(src="fd00:0:0:1::2", dst="ff02::1:ff00:1", hlim=255)/IPv6ExtHdrHopByHop()/ICMPv6ND_NS(tgt="fd00:0:0:1::1"),
  "ptb": IPv6(src="fd00:0:0:2::1", dst="fd00:0:0:1::2")/ICMPv6PacketTooBig(mtu=1430)/Raw(bytes(big)[:1184]),
  "echo": IPv6(src="fd00:0:0:1::2", dst="fd00:0:0:2::3")/ICMPv6EchoRequest(id=7, seq=1, data=b"hi"),
  "time_exceeded": IPv6(src="fd00:0:0:2::1", dst="fd00:0:0:1::2")/ICMPv6TimeExceeded()/Raw(bytes(big)[:100]),
  "big_udp": big,
  "udp_behind_destopt": IPv6(src="fd00:0:0:1::2", dst="fd00:0:0:2::3")/IPv6ExtHdrDestOpt()/UDP(sport=1, dport=2)/Raw(b"x"),
  "jumbogram": IPv6(src="fd00:0:0:1::2", dst="fd00:0:0:2::3", plen=0)/IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=70000)])/UDP(sport=1, dport=2)/Raw(b"x"*8),
  "ipv4": __import__("scapy.all").all.IP(src="10.0.0.1", dst="10.0.0.2")/UDP()/Raw(b"x"*40),
}
print(json.dumps({k: bytes(v).hex() for k, v in p.items()}))
`;

import { scapyPackets } from "../fixtures/scapy.js";

const { skip: SKIP, pk } = scapyPackets(SCRIPT);

const ip6 = (s: string) => parseIpv6(s)!;
const info = newIpv6Info();
const icmp = newIcmp6Info();
const ns = newNdpSolicit();

/** ipv6Parse, then icmp6Parse, then ndpParseSolicit: the first drop reason, or none. */
function solicit(b: Buffer): string {
  let d = ipv6Parse(b, 0, b.length, info);
  if (d === Drop.None) d = icmp6Parse(b, 0, info.totalLen, icmp);
  if (d === Drop.None) d = ndpParseSolicit(b, 0, icmp, ns);
  return dropName[d];
}

t.test("IPv6 header: scapy's packets parse; hostile ones drop by name", { skip: SKIP }, (t) => {
  t.equal(ipv6Parse(pk.big_udp, 0, pk.big_udp.length, info), Drop.None);
  t.equal(info.totalLen, pk.big_udp.length);
  t.equal(info.nextHeader, 17);
  const padded = Buffer.concat([pk.echo, Buffer.alloc(6)]);
  t.equal(ipv6Parse(padded, 0, padded.length, info), Drop.None);
  t.equal(info.totalLen, pk.echo.length, "Ethernet padding is not payload");
  const names = (b: Buffer, len = b.length) => dropName[ipv6Parse(b, 0, len, info)];
  t.equal(names(pk.jumbogram), "ipv6_jumbogram");
  t.equal(names(pk.ipv4), "ipv6_bad_version");
  t.equal(names(pk.big_udp, 39), "ipv6_truncated", "shorter than the fixed header");
  t.equal(names(pk.big_udp, pk.big_udp.length - 1), "ipv6_truncated", "payload runs past");
  t.end();
});

t.test("ICMPv6: checksum over the pseudo-header, Packet Too Big MTU", { skip: SKIP }, (t) => {
  const b = pk.ptb;
  t.equal(ipv6Parse(b, 0, b.length, info), Drop.None);
  t.equal(icmp6Parse(b, 0, info.totalLen, icmp), Drop.None);
  t.equal(icmp.type, ICMP6_PACKET_TOO_BIG);
  t.equal(icmp.mtu, 1430);
  const bad = Buffer.from(b);
  bad[bad.length - 1] ^= 1;
  t.equal(icmp6Parse(bad, 0, info.totalLen, icmp), Drop.Icmp6BadChecksum);
  const src = Buffer.from(b);
  src[IPV6_SRC + 15] ^= 1;
  t.equal(icmp6Parse(src, 0, info.totalLen, icmp), Drop.Icmp6BadChecksum, "pseudo-header");
  t.equal(icmp6Parse(b, 0, 44, icmp), Drop.Icmp6Truncated);
  t.end();
});

t.test("neighbour solicitations: RFC 4861 §7.1.1 validation", { skip: SKIP }, (t) => {
  t.equal(solicit(pk.ns), "none");
  t.equal(formatIpv6(pk.ns, ns.targetOff), "fd00:0:0:1::1");
  t.equal(formatMac(ns.sourceMac), "02:00:00:00:01:02");
  t.equal(ns.fromUnspecified, false);
  t.equal(solicit(pk.ns_unicast_no_opt), "none");
  t.equal(ns.sourceMac, -1);
  t.equal(solicit(pk.ns_dad), "none");
  t.equal(ns.fromUnspecified, true);
  t.equal(solicit(pk.ns_behind_hbh), "none", "behind a hop-by-hop header (MLD-style)");
  t.equal(solicit(pk.ns_hop_64), "ndp_invalid", "forwarded: hop limit below 255");
  t.equal(solicit(pk.ns_multicast_target), "ndp_invalid");
  t.equal(solicit(pk.ns_zero_len_opt), "ndp_invalid", "an option of length 0");
  t.equal(solicit(pk.ns_dad_with_lladdr), "ndp_invalid", "DAD with a source lladdr");
  t.equal(solicit(pk.ns_dad_not_solicited_node), "ndp_invalid");
  t.equal(solicit(pk.echo), "ndp_invalid", "not a solicitation");
  t.end();
});

t.test(
  "advertisements and errors dissect cleanly in tshark",
  { skip: SKIP || TSHARK_SKIP },
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), "vxtun-icmp6-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const w = new PcapWriter(LINKTYPE_RAW);
    const mac = parseMac("0e:00:00:00:00:02")!;

    // Answer in place, over the solicitation itself (what the TAP path will do).
    const a = Buffer.alloc(NDP_ADVERT_LEN + 64);
    pk.ns.copy(a);
    t.equal(solicit(a.subarray(0, pk.ns.length)), "none");
    const n1 = ndpWriteAdvert(a, 0, a, ns.targetOff, mac, a, IPV6_SRC, false);
    t.equal(n1, NDP_ADVERT_LEN);
    w.add(a, 0, n1);
    // Duplicate address detection: to all-nodes, not solicited.
    const b = Buffer.alloc(NDP_ADVERT_LEN);
    t.equal(solicit(pk.ns_dad), "none");
    w.add(b, 0, ndpWriteAdvert(b, 0, pk.ns_dad, ns.targetOff, mac, pk.ns_dad, IPV6_SRC, true));

    const e = newIcmp6ErrorParams();
    e.from.set(ip6("fd00:0:0:1::1"));
    e.value = 1430;
    const c = Buffer.alloc(IPV6_MIN_MTU + 100);
    const n3 = icmp6WriteError(c, 0, pk.big_udp, 0, pk.big_udp.length, e);
    t.equal(n3, IPV6_MIN_MTU, "quotes as much as fits in 1280 bytes");
    w.add(c, 0, n3);
    // In place: the error overwrites the packet it answers.
    const d = Buffer.alloc(IPV6_MIN_MTU + 100);
    pk.echo.copy(d);
    e.type = ICMP6_TIME_EXCEEDED;
    e.value = 0;
    const n4 = icmp6WriteError(d, 0, d, 0, pk.echo.length, e);
    t.equal(n4, 48 + pk.echo.length);
    w.add(d, 0, n4);
    t.equal(
      icmp6WriteError(c, 0, pk.time_exceeded, 0, pk.time_exceeded.length, e),
      0,
      "no error about an error",
    );
    t.equal(icmp6WriteError(c, 0, pk.ns_dad, 0, pk.ns_dad.length, e), 0, "no error to ::");
    e.type = ICMP6_PACKET_TOO_BIG;

    const file = join(dir, "icmp6.pcap");
    w.writeFile(file);
    const p = tshark(file);
    t.equal(p.length, 4);
    for (const [i, l] of p.entries()) {
      t.same(problems(l), [], `frame ${i + 1} clean`);
      t.same(all(l, "icmpv6.checksum.status").slice(0, 1), ["1"], `frame ${i + 1} checksum good`);
    }
    t.same(all(p[0], "icmpv6.nd.na.target_address"), ["fd00:0:0:1::1"]);
    t.same(all(p[0], "icmpv6.nd.na.flag.s"), ["1"]);
    t.same(all(p[0], "icmpv6.nd.na.flag.o"), ["1"]);
    t.same(all(p[0], "icmpv6.opt.linkaddr"), ["0e:00:00:00:00:02"]);
    t.same(all(p[0], "ipv6.dst"), ["fd00:0:0:1::2"], "back to the solicitor");
    t.same(all(p[0], "ipv6.src"), ["fd00:0:0:1::1"], "from the target");
    t.same(all(p[0], "ipv6.hlim"), ["255"]);
    t.same(all(p[1], "ipv6.dst"), ["ff02::1"]);
    t.same(all(p[1], "icmpv6.nd.na.flag.s"), ["0"]);
    t.same(all(p[2], "icmpv6.mtu"), ["1430"]);
    t.same(all(p[2], "ipv6.dst")[0], "fd00:0:0:1::2");
    t.same(all(p[3], "icmpv6.type")[0], "3");
    t.end();
  },
);
