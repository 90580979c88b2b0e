import t from "tap";
import { parseIpv4 } from "../../src/encap/addr.js";
import { Drop } from "../../src/encap/drop.js";
import {
  IPPROTO_UDP,
  IPV4_DF,
  ipv4ChecksumOk,
  ipv4DecrementTtl,
  ipv4FillChecksum,
  ipv4IsFragment,
  ipv4Parse,
  ipv4SetTos,
  ipv4Write,
  newIpv4Info,
} from "../../src/encap/ipv4.js";
import { hex, patched, toHex } from "../fixtures/hex.js";

// scapy: IP(src=10.0.0.1, dst=10.0.0.2, id=1, ttl=64)/UDP(sport=1234, dport=5678)/"hello"
const UDP_PKT = hex(`
  45 00 0021 0001 0000 40 11 66c9 0a000001 0a000002
  04d2 162e 000d 8cff 68656c6c6f`);

t.test("deconstruct", (t) => {
  const ip = newIpv4Info();
  t.equal(ipv4Parse(UDP_PKT, 0, UDP_PKT.length, ip), Drop.None);
  t.same(ip, {
    hdrLen: 20,
    totalLen: 33,
    tos: 0,
    id: 1,
    df: false,
    mf: false,
    fragOff: 0,
    ttl: 64,
    protocol: IPPROTO_UDP,
    src: parseIpv4("10.0.0.1"),
    dst: parseIpv4("10.0.0.2"),
    payloadOff: 20,
    payloadLen: 13,
  });
  t.end();
});

t.test("construct", (t) => {
  const b = Buffer.from(UDP_PKT);
  b.fill(0, 0, 20);
  ipv4Write(b, 0, {
    tos: 0,
    totalLen: 33,
    id: 1,
    flags: 0,
    ttl: 64,
    protocol: IPPROTO_UDP,
    src: 0x0a000001,
    dst: 0x0a000002,
  });
  t.equal(toHex(b), toHex(UDP_PKT));
  t.end();
});

t.test("options are skipped by IHL; Ethernet padding allowed", (t) => {
  // IHL 6 with one 4-byte option (NOP NOP NOP EOL), then 4 bytes payload, then padding.
  const b = Buffer.alloc(40);
  b.set(hex("46000020 1234 4000 0511 0000 c6120001 c6120002 01010100 deadbeef"));
  ipv4FillChecksum(b, 0);
  const ip = newIpv4Info();
  t.equal(ipv4Parse(b, 0, b.length, ip), Drop.None);
  t.equal(ip.hdrLen, 24);
  t.equal(ip.payloadOff, 24);
  t.equal(ip.payloadLen, 8);
  t.equal(ip.df, true);
  t.equal(ip.ttl, 5);
  t.end();
});

t.test("fragment fields", (t) => {
  const b = Buffer.from(UDP_PKT);
  b.writeUInt16BE(0x2000 | 185, 6); // MF, offset 1480
  ipv4FillChecksum(b, 0);
  const ip = newIpv4Info();
  t.equal(ipv4Parse(b, 0, b.length, ip), Drop.None);
  t.equal(ip.mf, true);
  t.equal(ip.fragOff, 1480);
  t.equal(ipv4IsFragment(b, 0), true);
  t.equal(ipv4IsFragment(UDP_PKT, 0), false);
  t.end();
});

t.test("drops, each before reading past len", (t) => {
  const ip = newIpv4Info();
  const shortTotal = patched(UDP_PKT, 2, 0, 19);
  ipv4FillChecksum(shortTotal, 0);
  const badSum = patched(UDP_PKT, 11, UDP_PKT[11] ^ 1);
  const cases: [string, Uint8Array, number, Drop][] = [
    ["19 bytes", UDP_PKT, 19, Drop.Ipv4Truncated],
    ["version 6", patched(UDP_PKT, 0, 0x65), 33, Drop.Ipv4BadVersion],
    ["IHL 4", patched(UDP_PKT, 0, 0x44), 33, Drop.Ipv4BadIhl],
    ["a 60-byte header in a 33-byte buffer", patched(UDP_PKT, 0, 0x4f), 33, Drop.Ipv4Truncated],
    ["total length 19", shortTotal, 33, Drop.Ipv4BadTotalLength],
    ["total length beyond buffer", UDP_PKT, 32, Drop.Ipv4Truncated],
    ["bad checksum", badSum, 33, Drop.Ipv4BadChecksum],
  ];
  for (const [name, b, len, drop] of cases) t.equal(ipv4Parse(b, 0, len, ip), drop, name);
  t.end();
});

t.test("TTL decrement with incremental checksum", (t) => {
  const b = Buffer.from(UDP_PKT);
  for (let ttl = 64; ttl > 1; ttl--) {
    t.equal(ipv4DecrementTtl(b, 0), Drop.None);
    if (!ipv4ChecksumOk(b, 0, 20)) t.fail(`checksum at ttl ${ttl - 1}`);
  }
  t.equal(b[8], 1);
  t.equal(ipv4DecrementTtl(b, 0), Drop.TtlExpired);
  t.equal(b[8], 1, "unchanged when expired");
  t.ok(ipv4ChecksumOk(b, 0, 20));
  t.end();
});

t.test("TOS rewrite keeps the checksum valid", (t) => {
  const b = Buffer.from(UDP_PKT);
  ipv4SetTos(b, 0, 0xb8 | 3);
  t.equal(b[1], 0xbb);
  t.ok(ipv4ChecksumOk(b, 0, 20));
  t.end();
});

t.test("DF flag", (t) => {
  const b = Buffer.alloc(20);
  ipv4Write(b, 0, {
    tos: 0,
    totalLen: 20,
    id: 0,
    flags: IPV4_DF,
    ttl: 1,
    protocol: 6,
    src: 1,
    dst: 2,
  });
  t.equal(b[6], 0x40);
  t.end();
});
