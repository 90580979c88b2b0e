import t from "tap";
import { parseIpv4 } from "../../src/encap/addr.js";
import { Drop } from "../../src/encap/drop.js";
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_ERROR_MAX_LEN,
  ICMP_FRAG_NEEDED,
  ICMP_TIME_EXCEEDED,
  ICMP_TTL_EXCEEDED,
  icmpEchoToReply,
  icmpParse,
  icmpWriteEcho,
  icmpWriteError,
  newIcmpInfo,
} from "../../src/encap/icmp.js";
import { ipv4Parse, newIpv4Info } from "../../src/encap/ipv4.js";
import { hex, toHex } from "../fixtures/hex.js";

// scapy: IP(src=10.244.1.2, dst=10.244.2.3, id=7)/ICMP(type=8, id=0x1234, seq=1)/"abcdefgh"
const ECHO = hex(`
  45000024 0007 0000 40 01 61e6 0af40102 0af40203
  08 00 5435 1234 0001 6162636465666768`);

// The 28 bytes quoted below: IP(id=7, DF, ttl 64)/UDP(1 -> 2)/1000 bytes
const OFFENDER_HEAD = hex("45000404 0007 4000 40 11 1df6 0af40102 0af40203 0001 0002 03f0 93d3");
// scapy: IP(src=10.244.1.1, dst=10.244.1.2, tos=0xc0, DF, id=0)/ICMP(type=3, code=4,
//        nexthopmtu=1400)/OFFENDER_HEAD
const FRAG_NEEDED = hex(`
  45c00038 0000 4000 40 01 221b 0af40101 0af40102
  03 04 5fbd 0000 0578`);

t.test("deconstruct echo", (t) => {
  const m = newIcmpInfo();
  t.equal(icmpParse(ECHO, 20, 16, m), Drop.None);
  t.same(m, {
    type: 8,
    code: 0,
    checksum: 0x5435,
    id: 0x1234,
    seq: 1,
    mtu: 0,
    dataOff: 28,
    dataLen: 8,
  });
  t.end();
});

t.test("construct echo and reply in place", (t) => {
  const b = Buffer.from(ECHO);
  b.fill(0, 20, 28);
  icmpWriteEcho(b, 20, {
    ...newIcmpInfo(),
    type: ICMP_ECHO_REQUEST,
    id: 0x1234,
    seq: 1,
    dataLen: 8,
  });
  t.equal(toHex(b), toHex(ECHO));
  icmpEchoToReply(b, 20);
  const m = newIcmpInfo();
  t.equal(icmpParse(b, 20, 16, m), Drop.None, "checksum still valid");
  t.equal(m.type, ICMP_ECHO_REPLY);
  t.end();
});

t.test("frag-needed builder matches scapy byte for byte", (t) => {
  const offender = Buffer.alloc(1028);
  offender.set(OFFENDER_HEAD);
  const out = Buffer.alloc(100);
  const n = icmpWriteError(out, 10, offender, 0, offender.length, {
    type: ICMP_DEST_UNREACH,
    code: ICMP_FRAG_NEEDED,
    mtu: 1400,
    from: parseIpv4("10.244.1.1")!,
    ttl: 64,
    id: 0,
  });
  t.equal(n, 56);
  t.equal(toHex(out, 10, n), toHex(Buffer.concat([FRAG_NEEDED, OFFENDER_HEAD])));
  const ip = newIpv4Info();
  const m = newIcmpInfo();
  t.equal(ipv4Parse(out, 10, n, ip), Drop.None);
  t.equal(icmpParse(out, ip.payloadOff, ip.payloadLen, m), Drop.None);
  t.equal(m.mtu, 1400);
  t.equal(m.dataLen, 28);
  t.end();
});

t.test("time exceeded; builder works in one buffer with the offender behind", (t) => {
  const b = Buffer.alloc(200);
  b.set(ECHO, 30);
  const n = icmpWriteError(b, 0, b, 30, ECHO.length, {
    type: ICMP_TIME_EXCEEDED,
    code: ICMP_TTL_EXCEEDED,
    mtu: 0,
    from: 1,
    ttl: 64,
    id: 5,
  });
  t.equal(n, 20 + 8 + 28);
  t.equal(toHex(b, 28, 28), toHex(ECHO, 0, 28), "quote = header + 8 bytes");
  const m = newIcmpInfo();
  t.equal(icmpParse(b, 20, n - 20, m), Drop.None);
  t.equal(m.type, 11);
  t.equal(m.mtu, 0);
  t.ok(ICMP_ERROR_MAX_LEN >= n);
  t.end();
});

t.test("short offender quotes what there is", (t) => {
  const off = Buffer.from(ECHO.subarray(0, 24));
  off.writeUInt16BE(24, 2);
  const out = Buffer.alloc(100);
  t.equal(
    icmpWriteError(out, 0, off, 0, 24, { type: 3, code: 4, mtu: 1400, from: 1, ttl: 64, id: 0 }),
    20 + 8 + 24,
  );
  t.end();
});

t.test("no error about errors, non-first fragments, or to non-unicast sources", (t) => {
  const out = Buffer.alloc(100);
  const fn = (b: Buffer) =>
    icmpWriteError(out, 0, b, 0, b.length, {
      type: 3,
      code: 4,
      mtu: 1400,
      from: 1,
      ttl: 64,
      id: 0,
    });
  const err = Buffer.concat([FRAG_NEEDED, OFFENDER_HEAD]);
  t.equal(fn(err), 0, "ICMP error");
  t.ok(fn(ECHO) > 0, "ICMP query is fine");
  const frag = Buffer.from(ECHO);
  frag.writeUInt16BE(10, 6);
  t.equal(fn(frag), 0, "non-first fragment");
  const mc = Buffer.from(ECHO);
  mc.writeUInt32BE(0xe0000001, 16);
  t.equal(fn(mc), 0, "multicast destination");
  const zero = Buffer.from(ECHO);
  zero.writeUInt32BE(0, 12);
  t.equal(fn(zero), 0, "source 0.0.0.0");
  t.equal(fn(ECHO.subarray(0, 19)), 0, "shorter than a header");
  t.end();
});

t.test("drops", (t) => {
  const m = newIcmpInfo();
  t.equal(icmpParse(ECHO, 20, 7, m), Drop.IcmpTruncated);
  const b = Buffer.from(ECHO);
  b[35] ^= 1;
  t.equal(icmpParse(b, 20, 16, m), Drop.IcmpBadChecksum);
  t.end();
});
