import t from "tap";
import { Confirm, NeighTable, Nud } from "../../src/fdb/neigh.js";
import { fakeClock, ip, mac } from "../fixtures/table-inputs.js";

const VTEP = mac("aa:bb:cc:00:01:00");

t.test("permanent entries: add, replace, del, errors", (t) => {
  const nt = new NeighTable();
  nt.add("10.244.1.0", "aa:bb:cc:00:01:00");
  t.equal(nt.resolve(ip("10.244.1.0")), VTEP);
  t.throws(() => nt.add("10.244.1.0", "aa:bb:cc:00:01:01"), {
    code: "EEXIST",
    message: "neighbour 10.244.1.0 already exists (PERMANENT): use replace to change it",
  });
  nt.replace("10.244.1.0", "aa:bb:cc:00:01:01");
  t.equal(nt.resolve(ip("10.244.1.0")), VTEP + 1);
  nt.replace(ip("10.244.2.0"), VTEP + 2);
  t.equal(nt.size, 2);
  nt.del("10.244.1.0");
  t.throws(() => nt.del("10.244.1.0"), {
    code: "ENOENT",
    message: "no neighbour 10.244.1.0 to delete: see neigh show for the table",
  });
  t.throws(() => nt.add("10.244.1.300", VTEP), { code: "EINVAL" });
  t.throws(() => nt.add("10.244.1.3", "aa:bb"), {
    code: "EINVAL",
    message: 'bad lladdr "aa:bb": write six colon-separated hex pairs, e.g. aa:bb:cc:dd:ee:ff',
  });
  t.equal(nt.resolve(ip("10.9.9.9")), -1);
  t.equal(nt.lookup(ip("10.9.9.9")), undefined);
  t.end();
});

t.test("permanent entries never age and ignore the wire", (t) => {
  const clk = fakeClock();
  const nt = new NeighTable({ clock: clk.now });
  nt.add("10.244.1.0", VTEP);
  t.equal(nt.confirm(ip("10.244.1.0"), VTEP + 9, 5), Confirm.Ignored);
  t.equal(nt.expire(1e12), 0);
  t.equal(nt.lookup(ip("10.244.1.0"), 1e12)?.state, Nud.PERMANENT);
  t.equal(nt.resolve(ip("10.244.1.0"), 1e12), VTEP);
  t.end();
});

t.test("REACHABLE -> STALE -> collected", (t) => {
  const nt = new NeighTable({ reachableMs: 30_000, gcStaleMs: 60_000 });
  const a = ip("10.244.0.5");
  t.equal(nt.confirm(a, VTEP, 0), Confirm.Created);
  t.equal(nt.lookup(a, 29_999)?.state, Nud.REACHABLE);
  t.equal(nt.lookup(a, 30_000)?.state, Nud.STALE);
  t.equal(nt.lookup(a, 30_000)?.updated, 30_000);
  t.equal(nt.resolve(a, 50_000), VTEP, "STALE is still usable");
  t.equal(nt.expire(89_999), 0, "used or not, a stale entry lives gcStaleMs");
  t.equal(nt.expire(90_000), 1);
  t.equal(nt.resolve(a, 90_000), -1);
  t.equal(nt.counters.stale, 1);
  t.equal(nt.counters.gc, 1);
  t.end();
});

t.test("confirm refreshes, revives STALE, and tracks MAC changes", (t) => {
  const nt = new NeighTable();
  const a = ip("10.244.0.6");
  nt.confirm(a, VTEP, 0);
  t.equal(nt.lookup(a, 40_000)?.state, Nud.STALE);
  t.equal(nt.confirm(a, VTEP, 40_000), Confirm.Refreshed);
  t.equal(nt.lookup(a, 40_001)?.state, Nud.REACHABLE);
  t.equal(nt.confirm(a, VTEP + 1, 41_000), Confirm.Changed);
  t.equal(nt.resolve(a, 41_000), VTEP + 1);
  t.equal(nt.counters.changed, 1);
  t.end();
});

t.test("miss: INCOMPLETE asks once, FAILED after incompleteMs, then asks again", (t) => {
  const nt = new NeighTable({ incompleteMs: 3000 });
  const a = ip("10.244.0.7");
  t.equal(nt.miss(a, 0), true, "first miss solicits");
  t.equal(nt.miss(a, 1000), false, "burst suppressed while INCOMPLETE");
  t.equal(nt.lookup(a, 1000)?.state, Nud.INCOMPLETE);
  t.equal(nt.resolve(a, 1000), -1);
  t.equal(nt.lookup(a, 3000)?.state, Nud.FAILED);
  t.equal(nt.miss(a, 3500), true, "a FAILED entry is retried");
  t.equal(nt.lookup(a, 3500)?.state, Nud.INCOMPLETE);
  t.equal(nt.confirm(a, VTEP, 3600), Confirm.Resolved);
  t.equal(nt.counters.changed, 0);
  t.equal(nt.resolve(a, 3600), VTEP);
  // a FAILED entry is swept
  const b = ip("10.244.0.8");
  nt.miss(b, 0);
  t.equal(nt.expire(2999), 0);
  t.equal(nt.expire(3000), 1);
  t.equal(nt.counters.failed, 2);
  t.end();
});

t.test("maxEntries caps dynamic entries only", (t) => {
  const nt = new NeighTable({ maxEntries: 2 });
  nt.confirm(1, VTEP, 0);
  nt.miss(2, 0);
  t.equal(nt.confirm(3, VTEP, 0), Confirm.RefusedFull);
  t.equal(nt.miss(4, 0), false);
  t.equal(nt.counters.refused_full, 2);
  nt.add("10.0.0.9", VTEP);
  t.equal(nt.size, 3, "permanent entries are not capped");
  nt.del(ip("0.0.0.1"));
  t.equal(nt.confirm(3, VTEP, 0), Confirm.Created);
  nt.replace(ip("0.0.0.3"), VTEP);
  t.equal(nt.confirm(5, VTEP, 0), Confirm.Created, "replace made room");
  t.end();
});

t.test("show and showJson print like ip neigh show", (t) => {
  const clk = fakeClock(100_000);
  const nt = new NeighTable({ clock: clk.now, dev: "flannel.1" });
  nt.replace("10.244.1.0", "aa:bb:cc:dd:ee:ff");
  nt.confirm(ip("10.244.0.5"), mac("02:00:00:00:00:05"), 50_000);
  nt.confirm(ip("10.244.0.6"), mac("02:00:00:00:00:06"), 90_000);
  nt.miss(ip("10.244.0.7"), 99_000);
  t.equal(
    nt.show(),
    [
      "10.244.0.5 lladdr 02:00:00:00:00:05 STALE",
      "10.244.0.6 lladdr 02:00:00:00:00:06 REACHABLE",
      "10.244.0.7 INCOMPLETE",
      "10.244.1.0 lladdr aa:bb:cc:dd:ee:ff PERMANENT",
      "",
    ].join("\n"),
  );
  t.equal(
    nt.show({ dev: true, stats: true }).split("\n")[0],
    "10.244.0.5 dev flannel.1 lladdr 02:00:00:00:00:05 used 50/50/20 STALE",
  );
  t.same(nt.showJson()[3], {
    dst: "10.244.1.0",
    dev: "flannel.1",
    lladdr: "aa:bb:cc:dd:ee:ff",
    state: ["PERMANENT"],
  });
  t.same(nt.showJson({ stats: true })[2], {
    dst: "10.244.0.7",
    dev: "flannel.1",
    used: 1,
    confirmed: 100,
    updated: 1,
    state: ["INCOMPLETE"],
  });
  t.end();
});
