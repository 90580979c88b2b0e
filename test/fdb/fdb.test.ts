import t from "tap";
import { TableError } from "../../src/fdb/errors.js";
import { Fdb, Learn } from "../../src/fdb/fdb.js";
import { MacMap } from "../../src/fdb/machash.js";
import { fakeClock, ip, mac } from "../fixtures/table-inputs.js";

const A = mac("aa:bb:cc:dd:ee:01");
const B = mac("aa:bb:cc:dd:ee:02");

t.test("learn creates, refreshes, moves", (t) => {
  const clk = fakeClock(1000);
  const fdb = new Fdb({ clock: clk.now });
  t.equal(fdb.learn(A, ip("198.18.0.2"), 1000), Learn.Created);
  t.equal(fdb.learn(A, ip("198.18.0.2"), 2000), Learn.Refreshed);
  t.equal(fdb.lookup(A, 2500)?.updated, 2000);
  t.equal(fdb.lookup(A, 2500)?.used, 2500);
  t.equal(fdb.learn(A, ip("198.18.0.3"), 3000), Learn.Moved);
  const e = fdb.lookup(A, 3000);
  t.equal(e?.remote, ip("198.18.0.3"));
  t.equal(e?.updated, 3000);
  t.equal(e?.isStatic, false);
  t.same(fdb.counters, { learned: 1, aged: 0, refused_full: 0, moved: 1, static_conflict: 0 });
  t.equal(fdb.lookup(B), undefined);
  t.end();
});

t.test("refresh (frames seen on another queue): refreshes or re-creates, never moves", (t) => {
  const fdb = new Fdb({ clock: fakeClock(1000).now });
  t.equal(fdb.refresh(A, ip("198.18.0.2"), 1000), Learn.Created, "aged out meanwhile: back");
  t.equal(fdb.refresh(A, ip("198.18.0.2"), 2000), Learn.Refreshed);
  t.equal(fdb.lookup(A, 2000)?.updated, 2000, "ageing restarts");
  fdb.learn(A, ip("198.18.0.3"), 3000);
  t.equal(fdb.refresh(A, ip("198.18.0.2"), 4000), Learn.Ignored, "a stale report");
  t.equal(fdb.lookup(A, 4000)?.remote, ip("198.18.0.3"), "does not move it back");
  t.equal(fdb.lookup(A, 4000)?.updated, 3000, "nor refresh it");
  fdb.add(B, "198.18.0.9");
  t.equal(fdb.refresh(B, ip("198.18.0.9"), 5000), Learn.Ignored, "static entries are left alone");
  t.end();
});

t.test("multicast and zero source MACs are not learned", (t) => {
  const fdb = new Fdb();
  t.equal(fdb.learn(mac("01:00:5e:00:00:01"), 1, 0), Learn.Ignored);
  t.equal(fdb.learn(mac("ff:ff:ff:ff:ff:ff"), 1, 0), Learn.Ignored);
  t.equal(fdb.learn(0, 1, 0), Learn.Ignored);
  t.equal(fdb.size, 0);
  t.end();
});

t.test("ageing with the fake clock; static never ages", (t) => {
  const clk = fakeClock(0);
  const fdb = new Fdb({ clock: clk.now });
  fdb.add(B, "198.18.0.9");
  fdb.learn(A, ip("198.18.0.2"), 0);
  t.equal(fdb.expire(299_999), 0);
  fdb.lookup(A, 299_999); // sending to it does not keep it alive; only receiving does
  t.equal(fdb.expire(300_000), 1);
  t.equal(fdb.lookup(A), undefined);
  t.equal(fdb.counters.aged, 1);
  t.equal(fdb.expire(10 ** 9), 0);
  t.ok(fdb.lookup(B));
  // refresh postpones ageing
  fdb.learn(A, ip("198.18.0.2"), 0);
  fdb.learn(A, ip("198.18.0.2"), 200_000);
  t.equal(fdb.expire(300_000), 0);
  t.equal(fdb.expire(500_000), 1);
  t.end();
});

t.test("configurable ageing; 0 disables", (t) => {
  const fdb = new Fdb({ ageingMs: 1000 });
  fdb.learn(A, 1, 0);
  t.equal(fdb.expire(1000), 1);
  const never = new Fdb({ ageingMs: 0 });
  never.learn(A, 1, 0);
  t.equal(never.expire(1e12), 0);
  t.end();
});

t.test("static entries are never overwritten by learning", (t) => {
  const fdb = new Fdb();
  fdb.add("aa:bb:cc:dd:ee:01", "198.18.0.2");
  t.equal(fdb.learn(A, ip("198.18.0.3"), 5), Learn.StaticConflict);
  t.equal(fdb.lookup(A)?.remote, ip("198.18.0.2"));
  t.equal(fdb.learn(A, ip("198.18.0.2"), 5), Learn.Refreshed);
  t.equal(fdb.counters.static_conflict, 1);
  t.equal(fdb.counters.moved, 0);
  t.end();
});

t.test("maxAddress refuses and counts", (t) => {
  const fdb = new Fdb({ maxAddress: 2 });
  t.equal(fdb.learn(A, 1, 0), Learn.Created);
  fdb.add(B, "198.18.0.2");
  t.equal(fdb.learn(A + 2, 1, 0), Learn.RefusedFull);
  t.equal(fdb.learn(A + 4, 1, 0), Learn.RefusedFull);
  t.equal(fdb.counters.refused_full, 2);
  t.equal(fdb.learn(A, 2, 0), Learn.Moved, "existing entries still move when full");
  t.throws(() => fdb.add(A + 6, "198.18.0.2"), { code: "ENOSPC" });
  fdb.expire(1e9);
  t.equal(fdb.learn(A + 2, 1, 1e9), Learn.Created);
  t.end();
});

t.test("flood list: add, append, del, replace; stable array", (t) => {
  const fdb = new Fdb();
  const list = fdb.floodList();
  t.same(list, []);
  fdb.add("00:00:00:00:00:00", "198.18.0.4");
  t.throws(() => fdb.add("00:00:00:00:00:00", "198.18.0.5"), { code: "EEXIST" });
  fdb.append("00:00:00:00:00:00", "198.18.0.5");
  fdb.append(0, ip("198.18.0.6"));
  t.throws(() => fdb.append(0, "198.18.0.6"), { code: "EEXIST" });
  t.throws(() => fdb.append(A, "198.18.0.6"), { code: "EINVAL" });
  t.equal(fdb.floodList(), list, "same array object");
  t.same(list, [ip("198.18.0.4"), ip("198.18.0.5"), ip("198.18.0.6")]);
  fdb.del(0, "198.18.0.5");
  t.same(list, [ip("198.18.0.4"), ip("198.18.0.6")]);
  t.throws(() => fdb.del(0, "198.18.0.5"), { code: "ENOENT" });
  fdb.replace(0, "198.18.0.7");
  t.same(list, [ip("198.18.0.7")]);
  fdb.del(0);
  t.same(list, []);
  t.throws(() => fdb.del(0), { code: "ENOENT" });
  t.equal(fdb.floodList(), list);
  t.equal(fdb.lookup(0), undefined, "zero MAC is not a unicast entry");
  t.end();
});

t.test("add/del/replace static entries and errors", (t) => {
  const fdb = new Fdb();
  fdb.add(A, "198.18.0.2", { vni: 7, port: 4789 });
  t.throws(() => fdb.add(A, "198.18.0.3"), {
    code: "EEXIST",
    message: "FDB entry aa:bb:cc:dd:ee:01 already exists: use replace to change it",
  });
  fdb.replace(A, "198.18.0.3");
  const e = fdb.lookup(A);
  t.equal(e?.remote, ip("198.18.0.3"));
  t.equal(e?.vni, 1);
  t.equal(e?.port, 8472);
  fdb.learn(B, 5, 0);
  fdb.replace(B, "198.18.0.4");
  t.equal(fdb.lookup(B)?.isStatic, true, "replace pins a learned entry");
  t.throws(() => fdb.del(A, "198.18.0.9"), { code: "ENOENT" });
  fdb.del(A, "198.18.0.3");
  t.throws(() => fdb.del(A), {
    code: "ENOENT",
    message: "no FDB entry aa:bb:cc:dd:ee:01 to delete",
  });
  t.throws(() => fdb.add("aa:bb:cc:dd:ee", "198.18.0.2"), TableError);
  t.throws(() => fdb.add("aa:bb:cc:dd:ee:zz", "1.2.3.4"), {
    code: "EINVAL",
    message:
      'bad MAC address "aa:bb:cc:dd:ee:zz": write six colon-separated hex pairs, e.g. aa:bb:cc:dd:ee:ff',
  });
  t.throws(() => fdb.add(A, "198.18.0.256"), { code: "EINVAL" });
  t.throws(() => fdb.add(A, "198.18.0.2", { vni: 1 << 24 }), { code: "EINVAL" });
  t.throws(() => fdb.add(A, "198.18.0.2", { port: 0 }), { code: "EINVAL" });
  t.throws(() => fdb.add("01:00:5e:00:00:01", "198.18.0.2"), { code: "EINVAL" });
  t.throws(() => fdb.add(2 ** 48, "198.18.0.2"), { code: "EINVAL" });
  t.end();
});

t.test("flushDynamic keeps static entries", (t) => {
  const fdb = new Fdb();
  fdb.add(A, "198.18.0.2");
  fdb.learn(B, 1, 0);
  t.equal(fdb.flushDynamic(), 1);
  t.equal(fdb.size, 1);
  t.end();
});

t.test("show and showJson print like bridge fdb show", (t) => {
  const clk = fakeClock(0);
  const fdb = new Fdb({ clock: clk.now, dev: "vxtun0" });
  fdb.add("00:00:00:00:00:00", "198.18.0.4");
  fdb.add("aa:bb:cc:dd:ee:ff", "198.18.0.2");
  fdb.add("aa:bb:cc:dd:ee:fe", "198.18.0.5", { vni: 42, port: 4789 });
  fdb.learn(mac("02:00:00:00:00:01"), ip("198.18.0.3"), 0);
  clk.advance(61_500);
  fdb.lookup(mac("02:00:00:00:00:01"), 30_000);
  t.equal(
    fdb.show(),
    [
      "00:00:00:00:00:00 dst 198.18.0.4 self permanent",
      "02:00:00:00:00:01 dst 198.18.0.3 self",
      "aa:bb:cc:dd:ee:fe dst 198.18.0.5 port 4789 vni 42 self permanent",
      "aa:bb:cc:dd:ee:ff dst 198.18.0.2 self permanent",
      "",
    ].join("\n"),
  );
  t.equal(
    fdb.show({ dev: true, stats: true }).split("\n")[1],
    "02:00:00:00:00:01 dev vxtun0 dst 198.18.0.3 used 31/61 self",
  );
  const j = fdb.showJson();
  t.same(j[1], {
    mac: "02:00:00:00:00:01",
    ifname: "vxtun0",
    dst: "198.18.0.3",
    used: 31,
    updated: 61,
    flags: ["self"],
    state: "",
  });
  t.same(Object.keys(j[2]), [
    "mac",
    "ifname",
    "dst",
    "port",
    "vni",
    "used",
    "updated",
    "flags",
    "state",
  ]);
  t.equal(j[0].state, "permanent");
  t.end();
});

t.test("MacMap survives churn (backward-shift deletion)", (t) => {
  const m = new MacMap<number>(4);
  const ref = new Map<number, number>();
  let seed = 12345;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  let bad = 0;
  for (let i = 0; i < 20_000; i++) {
    // small key space so deletes hit and probe runs collide
    const k = (rnd() % 512) * 0x10000000 + (rnd() % 3);
    if (rnd() % 3 === 0) {
      if (m.delete(k) !== ref.delete(k)) bad++;
    } else {
      m.set(k, i);
      ref.set(k, i);
    }
  }
  t.equal(bad, 0, "delete agrees with Map");
  t.equal(m.size, ref.size);
  for (const [k, v] of ref) if (m.get(k) !== v) bad++;
  t.equal(bad, 0, "get agrees with Map");
  t.equal(m.get(0xffffffffffff), undefined);
  t.end();
});
