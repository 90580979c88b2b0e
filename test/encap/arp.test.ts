import t from "tap";
import { parseIpv4, parseMac } from "../../src/encap/addr.js";
import {
  ARP_LEN,
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  arpParse,
  arpRequestToReply,
  arpWrite,
  arpWriteRequest,
  newArpInfo,
} from "../../src/encap/arp.js";
import { Drop } from "../../src/encap/drop.js";
import { hex, toHex } from "../fixtures/hex.js";

// scapy: ARP(op=1, hwsrc=02:00:00:00:00:01, psrc=10.244.1.2, pdst=10.244.1.1)
const REQUEST = hex(`
  0001 0800 06 04 0001          # Ethernet, IPv4, 6, 4, request
  020000000001 0af40102         # sender
  000000000000 0af40101         # target`);

const MAC1 = parseMac("02:00:00:00:00:01")!;
const MAC9 = parseMac("02:00:00:00:00:09")!;
const IP2 = parseIpv4("10.244.1.2")!;
const IP1 = parseIpv4("10.244.1.1")!;

t.test("parse request", (t) => {
  const a = newArpInfo();
  t.equal(arpParse(REQUEST, 0, REQUEST.length, a), Drop.None);
  t.same(a, { op: ARP_OP_REQUEST, sha: MAC1, spa: IP2, tha: 0, tpa: IP1 });
  t.end();
});

t.test("build request", (t) => {
  const b = Buffer.alloc(ARP_LEN);
  t.equal(arpWriteRequest(b, 0, MAC1, IP2, IP1), ARP_LEN);
  t.equal(toHex(b), toHex(REQUEST));
  t.end();
});

t.test("proxy reply in place", (t) => {
  const b = Buffer.from(REQUEST);
  arpRequestToReply(b, 0, MAC9);
  const expect = Buffer.alloc(ARP_LEN);
  arpWrite(expect, 0, { op: ARP_OP_REPLY, sha: MAC9, spa: IP1, tha: MAC1, tpa: IP2 });
  t.equal(toHex(b), toHex(expect));
  const a = newArpInfo();
  t.equal(arpParse(b, 0, b.length, a), Drop.None);
  t.same(a, { op: ARP_OP_REPLY, sha: MAC9, spa: IP1, tha: MAC1, tpa: IP2 });
  t.end();
});

t.test("drops", (t) => {
  const a = newArpInfo();
  t.equal(arpParse(REQUEST, 0, 27, a), Drop.ArpTruncated);
  for (const [at, v] of [
    [1, 6], // htype 6 (IEEE 802)
    [2, 0x86], // ptype
    [4, 8], // hlen
    [5, 16], // plen
  ]) {
    const b = Buffer.from(REQUEST);
    b[at] = v;
    t.equal(arpParse(b, 0, b.length, a), Drop.ArpBadFormat, `byte ${at}`);
  }
  const b = Buffer.from(REQUEST);
  b[7] = 3; // RARP request
  t.equal(arpParse(b, 0, b.length, a), Drop.ArpBadOp);
  t.end();
});
