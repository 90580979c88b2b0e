import fc from "fast-check";
import t from "tap";
import { prefixMask } from "../../src/encap/addr.js";
import { TableError } from "../../src/fdb/errors.js";
import { parsePrefix } from "../../src/fdb/input.js";
import { RouteTable } from "../../src/fdb/route.js";
import { ip } from "../fixtures/table-inputs.js";

/** Reference: linear scan for the longest covering prefix. */
function brute(routes: Map<string, { addr: number; len: number; tag: number }>, a: number) {
  let best: { addr: number; len: number; tag: number } | undefined;
  for (const r of routes.values()) {
    if ((a & prefixMask(r.len)) >>> 0 === r.addr && (best === undefined || r.len > best.len)) {
      best = r;
    }
  }
  return best?.tag;
}

t.test("LPM basics: /0 default, /32 host, nesting", (t) => {
  const rt = new RouteTable();
  t.equal(rt.lookup(ip("10.0.0.1")), undefined);
  rt.add(0, 0, { gateway: "198.18.0.1", metric: 1 });
  rt.add("10.244.0.0", 16, { metric: 16 });
  rt.add("10.244.1.0", 24, { metric: 24 });
  rt.add("10.244.1.7", 32, { metric: 32 });
  rt.add("10.244.1.128", 25, { metric: 25 });
  rt.add("10.0.0.0", 8, { metric: 8 });
  const m = (s: string) => rt.lookup(ip(s))?.metric;
  t.equal(m("1.2.3.4"), 1);
  t.equal(m("255.255.255.255"), 1);
  t.equal(m("10.1.2.3"), 8);
  t.equal(m("10.244.9.9"), 16);
  t.equal(m("10.244.1.6"), 24);
  t.equal(m("10.244.1.7"), 32);
  t.equal(m("10.244.1.200"), 25);
  t.equal(rt.lookup(ip("10.244.1.7") | 0)?.metric, 32, "int32 form works too");
  rt.del("10.244.1.7", 32);
  t.equal(m("10.244.1.7"), 24);
  rt.del("10.244.1.0", 24);
  t.equal(m("10.244.1.7"), 16);
  t.equal(m("10.244.1.200"), 25);
  rt.del("10.244.1.128", 25);
  t.equal(m("10.244.1.200"), 16);
  rt.del(0, 0);
  t.equal(m("1.2.3.4"), undefined);
  t.equal(rt.size, 2);
  t.end();
});

t.test("replace, duplicate add, del of absent, host bits", (t) => {
  const rt = new RouteTable();
  rt.add("10.244.1.0", 24, { gateway: "10.244.1.0", onlink: true, mtu: 1450 });
  t.throws(() => rt.add("10.244.1.0", 24), {
    code: "EEXIST",
    message: "route 10.244.1.0/24 already exists: use replace to change it",
  });
  rt.replace("10.244.1.0", 24, { gateway: "10.244.1.0", onlink: true, mtu: 1400 });
  t.equal(rt.lookup(ip("10.244.1.9"))?.mtu, 1400);
  rt.replace("10.244.2.0", 24, {});
  t.equal(rt.size, 2);
  t.throws(() => rt.del("10.244.3.0", 24), {
    code: "ENOENT",
    message: "no route 10.244.3.0/24 to delete: see route show for the table",
  });
  t.throws(() => rt.add("10.244.1.5", 24), {
    code: "EINVAL",
    message: "prefix 10.244.1.5/24 has host bits set: use 10.244.1.0/24",
  });
  t.throws(() => rt.add("10.244.1.0", 33), { code: "EINVAL" });
  t.throws(() => rt.add("10.244.1", 24), TableError);
  t.throws(() => rt.add("10.0.0.0", 8, { onlink: true }), { code: "EINVAL" });
  t.throws(() => rt.add("10.0.0.0", 8, { mtu: 20 }), { code: "EINVAL" });
  rt.setMtu("10.244.1.0", 24, 1300);
  t.equal(rt.get("10.244.1.0", 24)?.mtu, 1300);
  t.throws(() => rt.setMtu("10.9.0.0", 16, 1300), { code: "ENOENT" });
  t.same(parsePrefix("default"), { addr: 0, len: 0 });
  t.same(parsePrefix("10.244.1.0/24"), { addr: ip("10.244.1.0"), len: 24 });
  t.same(parsePrefix("10.244.1.3"), { addr: ip("10.244.1.3"), len: 32 });
  t.throws(() => parsePrefix("10.244.1.0/x"), { code: "EINVAL" });
  t.throws(() => parsePrefix("10.244.1.1/24"), { code: "EINVAL" });
  t.end();
});

t.test("LPM matches a linear scan (property)", (t) => {
  // Lengths weighted toward the trie's level boundaries and the /16-/32 mix of real use.
  const lenArb = fc.oneof(
    fc.integer({ min: 0, max: 32 }),
    fc.constantFrom(0, 8, 15, 16, 17, 23, 24, 25, 31, 32),
  );
  // A small address pool makes prefixes nest and collide, which is where LPM goes wrong.
  const addrArb = fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }),
    fc
      .tuple(
        fc.constantFrom(0x0af40000, 0x0a000000, 0xc0a80000),
        fc.integer({ min: 0, max: 0x3ff }),
      )
      .map(([base, low]) => (base + low * 97) >>> 0),
  );
  const opArb = fc.record({ del: fc.boolean(), addr: addrArb, len: lenArb });
  fc.assert(
    fc.property(
      fc.array(opArb, { minLength: 1, maxLength: 120 }),
      fc.array(addrArb, { minLength: 1, maxLength: 60 }),
      (ops, probes) => {
        const rt = new RouteTable();
        const ref = new Map<string, { addr: number; len: number; tag: number }>();
        let tag = 1;
        for (const op of ops) {
          const addr = (op.addr & prefixMask(op.len)) >>> 0;
          const key = `${addr}/${op.len}`;
          if (op.del && ref.size > 0) {
            // delete an existing one, chosen by the generated address
            const keys = [...ref.keys()];
            const victim = ref.get(keys[op.addr % keys.length])!;
            rt.del(victim.addr, victim.len);
            ref.delete(`${victim.addr}/${victim.len}`);
          } else {
            rt.replace(addr, op.len, { metric: tag });
            ref.set(key, { addr, len: op.len, tag });
            tag++;
          }
        }
        const all = [...probes, ...[...ref.values()].flatMap((r) => [r.addr, (r.addr + 1) >>> 0])];
        for (const a of all) {
          const want = brute(ref, a);
          const got = rt.lookup(a)?.metric;
          if (got !== want) return false;
        }
        // Deleting everything must leave an empty trie.
        for (const r of ref.values()) rt.del(r.addr, r.len);
        return all.every((a) => rt.lookup(a) === undefined) && rt.size === 0;
      },
    ),
    { numRuns: 300 },
  );
  t.pass("300 random tables agree with brute force");
  t.end();
});

t.test("10,000 routes: all hits correct, nodes freed after delete", (t) => {
  const rt = new RouteTable();
  const ref = new Map<string, { addr: number; len: number; tag: number }>();
  let seed = 7;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed;
  };
  while (ref.size < 10_000) {
    const len = 16 + (rnd() % 17);
    const addr = (rnd() & prefixMask(len)) >>> 0;
    const key = `${addr}/${len}`;
    if (ref.has(key)) continue;
    rt.add(addr, len, { metric: ref.size + 1 });
    ref.set(key, { addr, len, tag: ref.size + 1 });
  }
  let bad = 0;
  for (const r of ref.values()) {
    const a = (r.addr | (rnd() & ~prefixMask(r.len))) >>> 0;
    if (rt.lookup(a)?.metric !== brute(ref, a)) bad++;
  }
  t.equal(bad, 0);
  for (const r of ref.values()) rt.del(r.addr, r.len);
  t.equal(rt.size, 0);
  t.equal((rt as unknown as { lpm: { nodes: number } }).lpm.nodes, 0, "all trie nodes freed");
  t.end();
});

t.test("show and showJson print like ip route show", (t) => {
  const rt = new RouteTable({ dev: "vxtun0" });
  rt.add("10.244.1.0", 24, { gateway: "10.244.1.0", onlink: true, mtu: 1450 });
  rt.add("10.244.0.0", 24, {});
  rt.add(0, 0, { gateway: "198.18.0.1", metric: 100 });
  rt.add("10.244.2.5", 32, { gateway: "198.18.0.3", onlink: true, remote: "198.18.0.3" });
  t.equal(
    rt.show(),
    [
      "default via 198.18.0.1 dev vxtun0 metric 100",
      "10.244.0.0/24 dev vxtun0 scope link",
      "10.244.1.0/24 via 10.244.1.0 dev vxtun0 onlink mtu 1450",
      "10.244.2.5 encap ip dst 198.18.0.3 via 198.18.0.3 dev vxtun0 onlink",
      "",
    ].join("\n"),
  );
  t.same(rt.showJson(), [
    { dst: "default", gateway: "198.18.0.1", dev: "vxtun0", metric: 100, flags: [] },
    { dst: "10.244.0.0/24", dev: "vxtun0", scope: "link", flags: [] },
    {
      dst: "10.244.1.0/24",
      gateway: "10.244.1.0",
      dev: "vxtun0",
      flags: ["onlink"],
      metrics: [{ mtu: 1450 }],
    },
    {
      dst: "10.244.2.5",
      encap: { type: "ip", dst: "198.18.0.3" },
      gateway: "198.18.0.3",
      dev: "vxtun0",
      flags: ["onlink"],
    },
  ]);
  t.end();
});
