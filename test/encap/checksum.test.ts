import t from "tap";
import {
  checksumFold,
  checksumSum,
  checksumUpdate16,
  internetChecksum,
  pseudoHeaderSum,
} from "../../src/encap/checksum.js";
import { hex } from "../fixtures/hex.js";

t.test("RFC 1071 section 3 example", (t) => {
  // 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2 (folded).
  const b = hex("0001 f203 f4f5 f6f7");
  t.equal(checksumFold(checksumSum(b, 0, 8)), 0xddf2);
  t.equal(internetChecksum(b, 0, 8), ~0xddf2 & 0xffff);
  t.end();
});

t.test("IPv4 header checksum (well-known example, checksum b861)", (t) => {
  const b = hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
  t.equal(internetChecksum(b, 0, 20), 0xb861);
  b[10] = 0xb8;
  b[11] = 0x61;
  t.equal(checksumFold(checksumSum(b, 0, 20)), 0xffff, "verifies to all ones");
  t.end();
});

t.test("odd length pads with a zero byte; offset honoured", (t) => {
  const b = hex("ff 01 02 03");
  t.equal(checksumFold(checksumSum(b, 1, 3)), 0x0102 + 0x0300);
  t.equal(checksumSum(b, 0, 0), 0);
  t.end();
});

t.test("unrolled loop agrees with a naive word loop for every length", (t) => {
  const b = Buffer.alloc(300);
  for (let i = 0; i < b.length; i++) b[i] = (i * 131 + 17) & 0xff;
  for (let off = 0; off < 3; off++) {
    for (let len = 0; len < 290; len++) {
      let s = 0;
      for (let i = 0; i + 1 < len; i += 2) s += (b[off + i] << 8) | b[off + i + 1];
      if (len & 1) s += b[off + len - 1] << 8;
      if (checksumFold(checksumSum(b, off, len)) !== checksumFold(s)) {
        t.fail(`off ${off} len ${len}`);
      }
    }
  }
  t.pass("all lengths");
  t.end();
});

t.test("pseudo-header sum", (t) => {
  // 10.0.0.1 -> 10.0.0.2, UDP, length 13: words 0a00 0001 0a00 0002 0011 000d.
  t.equal(pseudoHeaderSum(0x0a000001, 0x0a000002, 17, 13), 0x0a00 + 1 + 0x0a00 + 2 + 17 + 13);
  t.end();
});

t.test("RFC 1624 incremental update equals a full recompute", (t) => {
  const b = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7");
  // TTL 0x40 -> 0x3f in word 4 (TTL, protocol).
  const c = checksumUpdate16(0xb861, 0x4011, 0x3f11);
  b[8] = 0x3f;
  b[10] = 0;
  b[11] = 0;
  t.equal(c, internetChecksum(b, 0, 20));
  t.end();
});

t.test("RFC 1624 eqn 3 keeps +0 / -0 right (the eqn 2 pitfall)", (t) => {
  // RFC 1624 section 4 example: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives 0x0000.
  t.equal(checksumUpdate16(0xdd2f, 0x5555, 0x3285), 0x0000);
  t.end();
});
