import fc from "fast-check";
import t from "tap";
import { formatIpv6, maskIpv6, parseCidr6, parseIpv6 } from "../../src/encap/addr6.js";
import { TableError } from "../../src/fdb/errors.js";
import { parsePrefix6 } from "../../src/fdb/input.js";
import { RouteTable6 } from "../../src/fdb/route6.js";

const ip6 = (s: string): Uint8Array => {
  const a = parseIpv6(s);
  if (a === undefined) throw new Error(`bad test address ${s}`);
  return a;
};

interface Ref {
  addr: Uint8Array;
  len: number;
  tag: number;
}

/** Reference: linear scan for the longest covering prefix. */
function brute(routes: Map<string, Ref>, a: Uint8Array): number | undefined {
  let best: Ref | undefined;
  for (const r of routes.values()) {
    const covers = Buffer.compare(maskIpv6(a, r.len), r.addr) === 0;
    if (covers && (best === undefined || r.len > best.len)) best = r;
  }
  return best?.tag;
}

t.test("addresses: parse, RFC 5952 text, prefixes", (t) => {
  t.equal(formatIpv6(ip6("2001:0db8:0000:0000:0000:0000:0000:0001")), "2001:db8::1");
  t.equal(formatIpv6(ip6("fd00:0:0:1::")), "fd00:0:0:1::");
  t.equal(parseIpv6("10.0.0.1"), undefined, "IPv4 text is not IPv6");
  t.equal(parseIpv6("fe80::1%eth0"), undefined, "zones are refused");
  t.equal(parseIpv6("2001:db8::1::2"), undefined);
  t.equal(parseCidr6("fd00::/129"), undefined);
  t.equal(parseCidr6("fd00::/-1"), undefined);
  t.same(parseCidr6("fd00::/64")?.len, 64);
  t.same([...maskIpv6(ip6("ffff:ffff::"), 13)].slice(0, 3), [0xff, 0xf8, 0]);
  t.end();
});

t.test("LPM basics: default, /128 host, nesting across every level boundary", (t) => {
  const rt = new RouteTable6();
  const m = (s: string) => rt.lookup(ip6(s), 0)?.metric;
  t.equal(m("fd00::1"), undefined);
  rt.add("::", 0, { gateway: "fe80::1", metric: 1 });
  rt.add("fd00::", 8, { metric: 8 });
  rt.add("fd00::", 16, { metric: 16 });
  rt.add("fd00:0:0:1::", 64, { metric: 64 });
  rt.add("fd00:0:0:1::", 65, { metric: 65 });
  rt.add("fd00:0:0:1::7", 128, { metric: 128 });
  t.equal(m("2001:db8::1"), 1);
  t.equal(m("fdff::1"), 8);
  t.equal(m("fd00:1::1"), 16);
  t.equal(m("fd00:0:0:1:8000::1"), 64);
  t.equal(m("fd00:0:0:1::8"), 65);
  t.equal(m("fd00:0:0:1::7"), 128);
  const pkt = new Uint8Array(64);
  pkt.set(ip6("fd00:0:0:1::7"), 24);
  t.equal(rt.lookup(pkt, 24)?.metric, 128, "reads the address where it lies in a packet");
  rt.del("fd00:0:0:1::7", 128);
  t.equal(m("fd00:0:0:1::7"), 65);
  rt.del("fd00:0:0:1::", 65);
  t.equal(m("fd00:0:0:1::7"), 64);
  rt.del("fd00:0:0:1::", 64);
  t.equal(m("fd00:0:0:1::7"), 16);
  rt.del("::", 0);
  t.equal(m("2001:db8::1"), undefined);
  t.equal(rt.size, 2);
  t.end();
});

t.test("bad input: host bits, duplicates, absent, lengths, MTU below 1280", (t) => {
  const rt = new RouteTable6();
  t.throws(() => rt.add("fd00::1", 64), {
    message: "prefix fd00::1/64 has host bits set: use fd00::/64",
  });
  rt.add("fd00::", 64);
  t.throws(() => rt.add("fd00::", 64), { code: "EEXIST" });
  t.throws(() => rt.del("fd01::", 64), { code: "ENOENT" });
  t.throws(() => rt.add("fd00::", 129), { code: "EINVAL" });
  t.throws(() => rt.add("10.0.0.0", 8), TableError);
  t.throws(() => rt.setMtu("fd00::", 64, 1279), { message: /1280\.\.65535/ });
  t.throws(() => rt.add("fd02::", 64, { onlink: true }), { message: /onlink needs a gateway/ });
  t.throws(() => parsePrefix6("fd00::/x"), { message: /len in 0\.\.128/ });
  rt.setMtu("fd00::", 64, 1400);
  t.equal(rt.get("fd00::", 64)?.mtu, 1400);
  t.end();
});

t.test("LPM matches a linear scan (property)", (t) => {
  // Lengths at and around every level boundary (16, 24, ... 128) and pod-subnet sizes.
  const lenArb = fc.oneof(
    fc.integer({ min: 0, max: 128 }),
    fc.constantFrom(0, 15, 16, 17, 24, 48, 56, 63, 64, 65, 72, 80, 120, 127, 128),
  );
  // A small pool of networks makes prefixes nest and collide, which is where LPM fails.
  const addrArb = fc.oneof(
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    fc
      .tuple(fc.constantFrom("fd00::", "fd00:0:0:1::", "2001:db8::"), fc.nat(0xffff))
      .map(([base, low]) => {
        const a = ip6(base);
        a[7] ^= low & 0xff;
        a[15] = low >>> 8;
        return a;
      }),
  );
  const opArb = fc.record({ del: fc.boolean(), addr: addrArb, len: lenArb, pick: fc.nat() });
  fc.assert(
    fc.property(
      fc.array(opArb, { minLength: 1, maxLength: 100 }),
      fc.array(addrArb, { minLength: 1, maxLength: 40 }),
      (ops, probes) => {
        const rt = new RouteTable6();
        const ref = new Map<string, Ref>();
        let tag = 1;
        for (const op of ops) {
          if (op.del && ref.size > 0) {
            const keys = [...ref.keys()];
            const k = keys[op.pick % keys.length];
            const victim = ref.get(k)!;
            rt.del(victim.addr, victim.len);
            ref.delete(k);
          } else {
            const addr = maskIpv6(op.addr, op.len);
            rt.replace(addr, op.len, { metric: tag });
            ref.set(`${formatIpv6(addr)}/${op.len}`, { addr, len: op.len, tag });
            tag++;
          }
        }
        const all = [...probes, ...[...ref.values()].map((r) => r.addr)];
        for (const a of all) if (rt.lookup(a, 0)?.metric !== brute(ref, a)) return false;
        for (const r of ref.values()) rt.del(r.addr, r.len);
        return all.every((a) => rt.lookup(a, 0) === undefined) && rt.size === 0;
      },
    ),
    { numRuns: 200 },
  );
  t.pass("200 random tables agree with brute force");
  t.end();
});

t.test("10,000 /64-/128 routes: all hits correct, nodes freed after delete", (t) => {
  const rt = new RouteTable6();
  const ref = new Map<string, Ref>();
  let seed = 11;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed;
  };
  const randomAddr = (): Uint8Array => {
    const a = ip6("fd00::");
    for (let i = 2; i < 16; i++) a[i] = rnd() >>> 24;
    return a;
  };
  while (ref.size < 10_000) {
    const len = 48 + (rnd() % 81);
    const addr = maskIpv6(randomAddr(), len);
    const k = `${formatIpv6(addr)}/${len}`;
    if (ref.has(k)) continue;
    rt.add(addr, len, { metric: ref.size + 1 });
    ref.set(k, { addr, len, tag: ref.size + 1 });
  }
  // Every tenth route probed: the linear scan is 10,000 comparisons a probe.
  let bad = 0;
  let i = 0;
  for (const r of ref.values()) {
    if (i++ % 10 !== 0) continue;
    const a = randomAddr();
    a.set(r.addr.subarray(0, Math.floor(r.len / 8)));
    if (rt.lookup(a, 0)?.metric !== brute(ref, a)) bad++;
  }
  t.equal(bad, 0);
  for (const r of ref.values()) rt.del(r.addr, r.len);
  t.equal(rt.size, 0);
  t.equal((rt as unknown as { lpm: { nodes: number } }).lpm.nodes, 0, "all trie nodes freed");
  t.end();
});

t.test("show and showJson print like ip -6 route show", (t) => {
  const rt = new RouteTable6({ dev: "vxtun0" });
  rt.add("fd00:0:0:2::", 64, { gateway: "fd00:0:0:2::", onlink: true, mtu: 1430 });
  rt.add("fd00:0:0:1::", 64, {});
  rt.add("::", 0, { gateway: "fe80::1", metric: 1024 });
  rt.add("fd00:0:0:3::5", 128, { gateway: "fd00:0:0:3::", onlink: true, remote: "198.18.0.3" });
  t.equal(
    rt.show(),
    [
      "default via fe80::1 dev vxtun0 metric 1024",
      "fd00:0:0:1::/64 dev vxtun0",
      "fd00:0:0:2::/64 via fd00:0:0:2:: dev vxtun0 onlink mtu 1430",
      "fd00:0:0:3::5 encap ip dst 198.18.0.3 via fd00:0:0:3:: dev vxtun0 onlink",
      "",
    ].join("\n"),
  );
  t.same(rt.showJson()[1], { dst: "fd00:0:0:1::/64", dev: "vxtun0", flags: [] });
  t.end();
});
