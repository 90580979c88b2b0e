// The embedded file store without root: allocation, refusal of a second claimant,
// re-claim by the same node, expiry, watch events, corrupt files, config CAS.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import t from "tap";
import { FileStore } from "../../src/control/file-store.js";
import { type LeaseValue, networkConfigFor } from "../../src/control/flannel.js";
import { parseNet6 } from "../../src/control/ip6net.js";
import { claimSubnet } from "../../src/control/lease.js";
import type { LeaseEvent } from "../../src/control/store.js";

const log = pino({ level: "silent" });

function lease(ip: string): LeaseValue {
  return {
    PublicIP: ip,
    BackendType: "vxlan",
    BackendData: { VNI: 1, VtepMAC: "02:00:00:00:00:01" },
  };
}

function tempStore(t: { teardown: (fn: () => unknown) => void }, pollMs = 50) {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-store-"));
  const warnings: string[] = [];
  const store = new FileStore({ dir, pollMs, warn: (m) => warnings.push(m) });
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, store, warnings };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test("allocation skips the first subnet and never hands one subnet out twice", async (t) => {
  const { store } = tempStore(t);
  const opts = { network: "10.244.0.0/16", subnetLen: 24, ttlSeconds: 60, log };
  const a = await claimSubnet(store, { ...opts, value: lease("198.18.0.1") });
  const b = await claimSubnet(store, { ...opts, value: lease("198.18.0.2") });
  t.equal(a.subnet, "10.244.1.0/24", "first node gets 10.244.1.0/24 (x.x.0.0 skipped)");
  t.equal(b.subnet, "10.244.2.0/24", "second node gets the next one");
  const again = await claimSubnet(store, { ...opts, value: lease("198.18.0.1") });
  t.equal(again.subnet, "10.244.1.0/24", "a restarting node finds its own lease by PublicIP");
  const prev = await claimSubnet(store, {
    ...opts,
    value: lease("198.18.0.3"),
    previous: { subnet: "10.244.1.0/24" },
  });
  t.equal(prev.subnet, "10.244.3.0/24", "a remembered subnet held by another node is not taken");
});

t.test("dual stack: an IPv6 subnet beside the IPv4 one, keyed as flannel keys it", async (t) => {
  const { store, dir } = tempStore(t);
  const v6 = { network: parseNet6("fd00:10::/48")!, subnetLen: 64 };
  const opts = { network: "10.244.0.0/16", subnetLen: 24, ttlSeconds: 60, log };
  // Node 1 held an IPv4-only lease before the network went dual stack.
  const old = await claimSubnet(store, { ...opts, value: lease("198.18.0.1") });
  t.same(old, { subnet: "10.244.1.0/24", expiresAt: old.expiresAt });
  const a = await claimSubnet(store, { ...opts, v6, value: lease("198.18.0.1") });
  const b = await claimSubnet(store, { ...opts, v6, value: lease("198.18.0.2") });
  t.same(
    [a.subnet, a.subnet6],
    ["10.244.1.0/24", "fd00:10:0:1::/64"],
    "node 1 keeps its IPv4 subnet",
  );
  t.same([b.subnet, b.subnet6], ["10.244.2.0/24", "fd00:10:0:2::/64"], "first IPv6 block skipped");
  t.same(
    readdirSync(join(dir, "subnets")).sort(),
    ["10.244.1.0-24&fd00:10:0:1::-64.json", "10.244.2.0-24&fd00:10:0:2::-64.json"],
    "the IPv4-only lease was deleted, as flanneld deletes an incompatible one",
  );
  const { leases } = await store.listLeases();
  t.same(leases.map((l) => `${l.subnet} ${l.subnet6}`).sort(), [
    "10.244.1.0/24 fd00:10:0:1::/64",
    "10.244.2.0/24 fd00:10:0:2::/64",
  ]);
  const again = await claimSubnet(store, {
    ...opts,
    v6,
    value: lease("198.18.0.2"),
    previous: { subnet: b.subnet, subnet6: b.subnet6 },
  });
  t.same([again.subnet, again.subnet6], [b.subnet, b.subnet6], "a restart re-claims both halves");
});

t.test("concurrent claimants in one store all get distinct subnets", async (t) => {
  const { dir } = tempStore(t);
  const stores = Array.from({ length: 6 }, () => new FileStore({ dir }));
  const got = await Promise.all(
    stores.map((s, i) =>
      claimSubnet(s, {
        network: "10.244.0.0/16",
        subnetLen: 24,
        ttlSeconds: 60,
        log,
        value: lease(`198.18.0.${i + 1}`),
      }),
    ),
  );
  const subnets = got.map((g) => g.subnet);
  t.equal(new Set(subnets).size, 6, `distinct: ${subnets.join(" ")}`);
});

t.test("a second claimant of a live subnet is refused; an expired one is taken over", async (t) => {
  const { store } = tempStore(t);
  await store.createLease({ subnet: "10.244.5.0/24" }, lease("198.18.0.1"), 1);
  await t.rejects(
    store.createLease({ subnet: "10.244.5.0/24" }, lease("198.18.0.2"), 60),
    { name: "LeaseTakenError", holder: "198.18.0.1" },
    "refused while the first lease lives",
  );
  await store.createLease({ subnet: "10.244.5.0/24" }, lease("198.18.0.1"), 1);
  t.pass("the holder itself may re-claim");
  await sleep(1100);
  t.same((await store.listLeases()).leases, [], "expired = absent to readers");
  await store.createLease({ subnet: "10.244.5.0/24" }, lease("198.18.0.2"), 60);
  const { leases } = await store.listLeases();
  t.equal(leases[0].value.PublicIP, "198.18.0.2", "taken over after expiry");
});

t.test("watch: put, renewal, delete and expiry events within a second", async (t) => {
  const { store, dir } = tempStore(t);
  const snap = await store.listLeases();
  const events: LeaseEvent[] = [];
  const w = await store.watchLeases(snap, (e) => events.push(e), t.fail);
  t.teardown(() => w.cancel());
  const t0 = Date.now();
  await store.createLease({ subnet: "10.244.1.0/24" }, lease("198.18.0.1"), 60);
  await store.createLease({ subnet: "10.244.2.0/24" }, lease("198.18.0.2"), 1);
  while (events.length < 2 && Date.now() - t0 < 1000) await sleep(20);
  t.same(
    events.map((e) => (e.type === "put" ? e.lease.subnet : e.type)).sort(),
    ["10.244.1.0/24", "10.244.2.0/24"],
    `two puts seen after ${Date.now() - t0} ms`,
  );
  events.length = 0;
  rmSync(join(dir, "subnets", "10.244.1.0-24.json"));
  const t1 = Date.now();
  while (events.length < 2 && Date.now() - t1 < 2000) await sleep(20);
  t.same(
    events.map((e) => `${e.type} ${e.type === "put" ? e.lease.subnet : e.subnet}`).sort(),
    ["delete 10.244.1.0/24", "expire 10.244.2.0/24"],
    "a removed file is a delete, a lapsed one an expiry",
  );
});

t.test("corrupt lease and config files are named", async (t) => {
  const { store, dir, warnings } = tempStore(t);
  const file = join(dir, "subnets", "10.244.9.0-24.json");
  writeFileSync(file, "{not json");
  t.same((await store.listLeases()).leases, [], "a corrupt lease is skipped by readers");
  t.match(warnings[0], file, "and reported once, naming the file");
  await t.rejects(store.createLease({ subnet: "10.244.9.0/24" }, lease("198.18.0.1"), 60), {
    message: new RegExp(`lease file ${file}: not valid JSON`),
  });
  writeFileSync(join(dir, "config.json"), '{"Network": 5}');
  await t.rejects(store.getConfig(), { message: /network config .*config\.json: Network/ });
});

t.test("putConfigIfAbsent keeps the first config", async (t) => {
  const { store } = tempStore(t);
  const first = networkConfigFor("10.244.0.0/16", 24, { mode: "vxlan", vni: 1, port: 8472 });
  t.same(await store.putConfigIfAbsent(first), first);
  const other = networkConfigFor("10.9.0.0/16", 24, { mode: "vxlan", vni: 1, port: 8472 });
  t.same(await store.putConfigIfAbsent(other), first, "the earlier config wins");
  t.same(await store.getConfig(), first);
});
