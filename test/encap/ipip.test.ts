import t from "tap";
import { parseIpv4 } from "../../src/encap/addr.js";
import { Drop } from "../../src/encap/drop.js";
import { DfPolicy, IPIP_INHERIT, ipipDecap, ipipEncap, newIpipInfo } from "../../src/encap/ipip.js";
import { ipv4ChecksumOk, ipv4FillChecksum } from "../../src/encap/ipv4.js";
import { hex, place, toHex } from "../fixtures/hex.js";

// scapy: IP(198.18.0.1 -> 198.18.0.2, id 9, DF)/IP(10.244.1.2 -> 10.244.2.3, id 7,
//        ttl 63, DF)/ICMP(id=1, seq=1)
const OUTER = hex("45000030 0009 4000 40 04 ae99 c6120001 c6120002");
const INNER = hex("4500001c 0007 4000 3f 01 22ee 0af40102 0af40203 0800 f7fd 0001 0001");
const S = parseIpv4("198.18.0.1")!;
const D = parseIpv4("198.18.0.2")!;

t.test("construct equals scapy", (t) => {
  const b = place(INNER, 20);
  t.equal(
    ipipEncap(b, 20, INNER.length, { src: S, dst: D, ttl: 64, tos: 0, df: DfPolicy.Copy, id: 9 }),
    0,
  );
  t.equal(toHex(b), toHex(Buffer.concat([OUTER, INNER])));
  t.end();
});

t.test("deconstruct", (t) => {
  const b = Buffer.concat([OUTER, INNER, Buffer.alloc(6)]); // trailing padding
  const r = newIpipInfo();
  t.equal(ipipDecap(b, 0, b.length, r), Drop.None);
  t.equal(r.outer.src, S);
  t.equal(r.outer.dst, D);
  t.equal(r.outer.protocol, 4);
  t.equal(r.innerOff, 20);
  t.equal(r.innerLen, 28);
  t.equal(r.inner.ttl, 63);
  t.equal(r.inner.dst, parseIpv4("10.244.2.3"));
  t.end();
});

t.test("TTL/TOS inherit, ECN per RFC 6040, DF policies", (t) => {
  const inner = Buffer.from(INNER);
  inner[1] = 0xb8 | 3; // EF + CE
  ipv4FillChecksum(inner, 0);
  const b = place(inner, 20);
  ipipEncap(b, 20, inner.length, {
    src: S,
    dst: D,
    ttl: IPIP_INHERIT,
    tos: IPIP_INHERIT,
    df: DfPolicy.Copy,
    id: 1,
  });
  t.equal(b[8], 63, "TTL inherited");
  t.equal(b[1], 0xb8 | 2, "DSCP inherited, CE -> ECT(0)");
  t.equal(b[6] & 0x40, 0x40, "DF copied");
  t.ok(ipv4ChecksumOk(b, 0, 20));
  ipipEncap(b, 20, inner.length, { src: S, dst: D, ttl: 10, tos: 0x20, df: DfPolicy.Clear, id: 1 });
  t.equal(b[8], 10);
  t.equal(b[1], 0x20 | 2, "fixed DSCP keeps ECN from inner");
  t.equal(b[6] & 0x40, 0);
  inner[6] = 0;
  ipv4FillChecksum(inner, 0);
  b.set(inner, 20);
  ipipEncap(b, 20, inner.length, { src: S, dst: D, ttl: 10, tos: 0, df: DfPolicy.Copy, id: 1 });
  t.equal(b[6] & 0x40, 0, "no DF to copy");
  ipipEncap(b, 20, inner.length, { src: S, dst: D, ttl: 10, tos: 0, df: DfPolicy.Set, id: 1 });
  t.equal(b[6] & 0x40, 0x40, "DF forced");
  t.ok(ipv4ChecksumOk(b, 0, 20));
  t.end();
});

t.test("encap errors", (t) => {
  const b = place(INNER, 19);
  t.equal(
    ipipEncap(b, 19, INNER.length, { src: S, dst: D, ttl: 64, tos: 0, df: 0, id: 0 }),
    -Drop.NoHeadroom,
  );
  t.equal(
    ipipEncap(b, 19, 19, { src: S, dst: D, ttl: 64, tos: 0, df: 0, id: 0 }),
    -Drop.Ipv4Truncated,
  );
  b[19] = 0x60;
  t.equal(
    ipipEncap(b, 19, INNER.length, { src: S, dst: D, ttl: 64, tos: 0, df: 0, id: 0 }),
    -Drop.Ipv4BadVersion,
  );
  t.end();
});

t.test("decap drops", (t) => {
  const r = newIpipInfo();
  const good = Buffer.concat([OUTER, INNER]);
  let b = Buffer.from(good);
  b[9] = 17;
  ipv4FillChecksum(b, 0);
  t.equal(ipipDecap(b, 0, b.length, r), Drop.Ipv4BadProtocol);
  b = Buffer.from(good);
  b[6] = 0x20; // MF
  ipv4FillChecksum(b, 0);
  t.equal(ipipDecap(b, 0, b.length, r), Drop.Ipv4Fragment);
  b = Buffer.from(good);
  b[31] ^= 1; // inner checksum
  t.equal(ipipDecap(b, 0, b.length, r), Drop.IpipBadInner);
  t.equal(r.innerDrop, Drop.Ipv4BadChecksum);
  b = Buffer.from(good);
  b[20] = 0x60;
  t.equal(ipipDecap(b, 0, b.length, r), Drop.IpipBadInner);
  t.equal(r.innerDrop, Drop.Ipv4BadVersion);
  t.equal(ipipDecap(good, 0, 30, r), Drop.Ipv4Truncated);
  t.end();
});
