import t from "tap";
import { parseIpv4 } from "../../src/encap/addr.js";
import { pseudoHeaderSum } from "../../src/encap/checksum.js";
import { Drop } from "../../src/encap/drop.js";
import {
  newTcpInfo,
  TCP_SYN,
  tcpChecksumOk,
  tcpFillChecksum,
  tcpParse,
  tcpWrite,
} from "../../src/encap/tcp.js";
import {
  newUdpInfo,
  udpChecksum,
  udpChecksumOk,
  udpFillChecksum,
  udpParse,
  udpWrite,
} from "../../src/encap/udp.js";
import { hex, patched, toHex } from "../fixtures/hex.js";

const A = parseIpv4("10.0.0.1")!;
const B = parseIpv4("10.0.0.2")!;
/** Pseudo-header sums for A -> B: a 13- and a 10-byte UDP datagram, a 20-byte TCP segment. */
const UDP13 = pseudoHeaderSum(A, B, 17, 13);
const UDP10 = pseudoHeaderSum(A, B, 17, 10);
const TCP20 = pseudoHeaderSum(A, B, 6, 20);

// scapy: .../UDP(sport=1234, dport=5678)/"hello" (the 13 UDP bytes of the IPv4 test)
const UDP = hex("04d2 162e 000d 8cff 68656c6c6f");
// scapy: IP(flags=DF)/TCP(sport=40000, dport=80, seq=1, flags=S, window=65535)
const TCP = hex("9c40 0050 00000001 00000000 50 02 ffff ff4e 0000");

t.test("UDP deconstruct / construct / checksum", (t) => {
  const u = newUdpInfo();
  t.equal(udpParse(UDP, 0, UDP.length, u), Drop.None);
  t.same(u, {
    srcPort: 1234,
    dstPort: 5678,
    length: 13,
    checksum: 0x8cff,
    payloadOff: 8,
    payloadLen: 5,
  });
  t.ok(udpChecksumOk(UDP, 0, 13, UDP13));
  t.equal(udpChecksum(UDP, 0, 13, UDP13), 0x8cff, "compute ignores the field's current value");
  const b = Buffer.from(UDP);
  b.fill(0, 0, 8);
  udpWrite(b, 0, 1234, 5678, 13);
  t.equal(b.readUInt16BE(6), 0, "written without checksum");
  t.ok(udpChecksumOk(b, 0, 13, UDP13), "zero checksum means none");
  udpFillChecksum(b, 0, 13, UDP13);
  t.equal(toHex(b), toHex(UDP));
  b[9] ^= 0x20;
  t.notOk(udpChecksumOk(b, 0, 13, UDP13));
  t.end();
});

t.test("UDP computed zero is sent as 0xffff", (t) => {
  // Find a payload word that makes the sum all ones.
  const b = Buffer.alloc(10);
  udpWrite(b, 0, 1, 2, 10);
  const c = udpChecksum(b, 0, 10, UDP10);
  // Adding the checksum value to the payload makes the complement 0.
  b.writeUInt16BE(c, 8);
  t.equal(udpChecksum(b, 0, 10, UDP10), 0xffff);
  t.end();
});

t.test("TCP deconstruct / construct / checksum", (t) => {
  const s = newTcpInfo();
  t.equal(tcpParse(TCP, 0, TCP.length, s), Drop.None);
  t.same(s, {
    srcPort: 40000,
    dstPort: 80,
    seq: 1,
    ack: 0,
    hdrLen: 20,
    flags: TCP_SYN,
    window: 65535,
    checksum: 0xff4e,
    payloadOff: 20,
    payloadLen: 0,
  });
  t.ok(tcpChecksumOk(TCP, 0, 20, TCP20));
  const b = Buffer.alloc(20);
  tcpWrite(b, 0, s);
  tcpFillChecksum(b, 0, 20, TCP20);
  t.equal(toHex(b), toHex(TCP));
  t.end();
});

t.test("UDP and TCP drops", (t) => {
  const udp = (b: Uint8Array, len: number) => udpParse(b, 0, len, newUdpInfo());
  const tcp = (b: Uint8Array, len: number) => tcpParse(b, 0, len, newTcpInfo());
  const cases: [string, typeof udp, Uint8Array, number, Drop][] = [
    ["UDP in 7 bytes", udp, UDP, 7, Drop.UdpTruncated],
    ["UDP length field beyond IP payload", udp, UDP, 12, Drop.UdpBadLength],
    ["UDP length 7", udp, patched(UDP, 4, 0, 7), 13, Drop.UdpBadLength],
    ["TCP in 19 bytes", tcp, TCP, 19, Drop.TcpTruncated],
    ["TCP data offset 4", tcp, patched(TCP, 12, 0x40), 20, Drop.TcpBadOffset],
    ["TCP 24-byte header in 20 bytes", tcp, patched(TCP, 12, 0x60), 20, Drop.TcpBadOffset],
  ];
  for (const [name, parse, b, len, drop] of cases) t.equal(parse(b, len), drop, name);
  t.notOk(tcpChecksumOk(patched(TCP, 17, TCP[17] ^ 1), 0, 20, TCP20), "TCP checksum checked");
  t.end();
});
