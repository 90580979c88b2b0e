import fc from "fast-check";
import t from "tap";
import { ipv4FragmentCount, ipv4WriteFragment } from "../../src/encap/fragment.js";
import { IPPROTO_UDP, IPV4_DF, ipv4Parse, ipv4Write, newIpv4Info } from "../../src/encap/ipv4.js";

function packet(payload: number): Uint8Array {
  const buf = new Uint8Array(20 + payload);
  ipv4Write(buf, 0, {
    tos: 0,
    totalLen: 20 + payload,
    id: 0x1234,
    flags: 0,
    ttl: 64,
    protocol: IPPROTO_UDP,
    src: 0x0af40101,
    dst: 0x0af40201,
  });
  for (let i = 0; i < payload; i++) buf[20 + i] = (i * 7) & 0xff;
  return buf;
}

t.test("a 1500-byte packet into a 1450 MTU: two valid fragments that reassemble", (t) => {
  const p = packet(1480);
  t.equal(ipv4FragmentCount(p, 0, p.length, 1450), 2);
  const info = newIpv4Info();
  const f0 = new Uint8Array(1450);
  const f1 = new Uint8Array(1450);
  const l0 = ipv4WriteFragment(p, 0, p.length, 1450, 0, f0, 0);
  const l1 = ipv4WriteFragment(p, 0, p.length, 1450, 1, f1, 0);
  t.equal(l0, 20 + 1424, "first payload is the largest multiple of 8 that fits");
  t.equal(l1, 20 + 56);
  t.equal(ipv4Parse(f0, 0, l0, info), 0, "fragment 0 parses with a good checksum");
  t.ok(info.mf, "MF on the first");
  t.equal(info.fragOff, 0);
  t.equal(info.id, 0x1234, "id copied");
  t.equal(ipv4Parse(f1, 0, l1, info), 0);
  t.notOk(info.mf, "no MF on the last");
  t.equal(info.fragOff, 1424);
  t.same([...f0.subarray(20, l0), ...f1.subarray(20, l1)], [...p.subarray(20)], "payload intact");
  t.end();
});

t.test("fits already: one fragment, identical bytes", (t) => {
  const p = packet(100);
  t.equal(ipv4FragmentCount(p, 0, p.length, 1450), 1);
  t.end();
});

t.test("property: fragments cover the payload exactly, each fits, offsets line up", (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 9000 }),
      fc.integer({ min: 68, max: 9000 }),
      (payload, mtu) => {
        const p = packet(payload);
        const n = ipv4FragmentCount(p, 0, p.length, mtu);
        if (n === 0) return false;
        if (n === 1) return p.length <= mtu; // forwarded unchanged
        const info = newIpv4Info();
        const out: number[] = [];
        let expectOff = 0;
        for (let k = 0; k < n; k++) {
          const f = new Uint8Array(Math.max(mtu, p.length));
          const len = ipv4WriteFragment(p, 0, p.length, Math.max(mtu, 0), k, f, 0);
          if (n > 1 && len > mtu) return false;
          if (ipv4Parse(f, 0, len, info) !== 0) return false;
          if (info.fragOff !== (n === 1 ? 0 : expectOff)) return false;
          if (n > 1 && info.mf !== k < n - 1) return false;
          expectOff += info.payloadLen;
          out.push(...f.subarray(20, len));
        }
        return out.length === payload && out.every((b, i) => b === p[20 + i]);
      },
    ),
    { numRuns: 300 },
  );
  t.end();
});

t.test("DF and the original MF/offset are kept", (t) => {
  const p = packet(3000);
  p[6] = (IPV4_DF >> 8) | 0x20; // DF + MF: a middle fragment of something larger
  p[7] = 10; // offset 80 bytes
  const info = newIpv4Info();
  const f = new Uint8Array(1500);
  const len = ipv4WriteFragment(p, 0, p.length, 1500, 2, f, 0);
  t.equal(ipv4Parse(f, 0, len, info), 0);
  t.ok(info.df, "DF copied");
  t.ok(info.mf, "last piece of a middle fragment still has MF");
  t.equal(info.fragOff, 80 + 2 * 1480);
  t.end();
});
