// `vxtun lab soak` on each store (the compiled CLI: agents restart as they would in
// production, not through tsx): faults of every kind while long-lived pods ping, then
// issue #20's goals. No process crashes; no host-local reservation without its pod; no
// veth, kernel route, dataplane route, FDB or neighbour entry beyond the live pods and
// peers (and none missing); no lease lost; every agent restart brings pod traffic back
// without waiting for the store (the 1 s goal is measured, not asserted: see below); a
// store outage costs pods nothing; the untouched agent's memory flat after its first
// minute.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { listLabNamespaces, skipUnlessRoot } from "../../src/lab/netns.js";
import type { SoakReport } from "../../src/lab/soak-report.js";
import { run } from "../../src/system/exec.js";
import { etcdMissing } from "../fixtures/etcd.js";
import { REPO } from "../fixtures/vxtun.js";

const BIN = [process.execPath, join(REPO, "bin/vxtun.js")];

// 1.75 minutes on the file store (memory is judged on a window of at least 20 s after
// the first minute), 36 s on etcd (every fault kind once, then a few drawn): about 3.5
// minutes in all.
for (const [store, minutes] of [
  ["file", 1.75],
  ["etcd", 0.6],
] as const) {
  t.test(`vxtun lab soak --minutes ${minutes} --store ${store}`, async (t) => {
    if (skipUnlessRoot(t)) return;
    if (store === "etcd" && etcdMissing()) {
      t.plan(0, `skipped: ${etcdMissing()}`);
      return;
    }
    if (!existsSync(join(REPO, "dist/lab/soak.js"))) {
      t.plan(0, "skipped: needs the build (npm run build)");
      return;
    }
    const out = mkdtempSync(join(tmpdir(), "vxtun-soak-"));
    t.teardown(() => rmSync(out, { recursive: true, force: true }));
    const lab = `sk${store}${process.pid % 10_000}`;
    t.teardown(() => run([...BIN, "lab", "down", "--lab", lab]));
    const nsBefore = await listLabNamespaces();
    const load = loadavg()[0] / cpus().length;
    const r = await run(
      [
        ...BIN,
        "lab",
        "soak",
        "--lab",
        lab,
        "--minutes",
        String(minutes),
        "--seed",
        "20",
        "--store",
        store,
        "--out",
        out,
      ],
      { timeoutMs: 300_000 },
    );
    t.comment(r.stdout);
    const file = join(out, "soak.json");
    t.ok(existsSync(file), `the report is written ${r.stderr.slice(-2000)}`);
    const rep = JSON.parse(readFileSync(file, "utf8")) as SoakReport;

    for (const [k, n] of Object.entries(rep.faults)) t.ok(n > 0, `fault ${k} injected (${n})`);
    t.same(rep.crashes, [], "no process crashed");
    t.equal(rep.leakedAddresses, 0, "no leaked host-local address");
    t.same(
      rep.leftovers,
      { veths: 0, kernelRoutes: 0, routes: 0, fdb: 0, neighbours: 0 },
      "no leftovers",
    );
    t.equal(rep.missing, 0, `nothing missing ${JSON.stringify(rep.audits.map((a) => a.missing))}`);
    t.equal(rep.leasesLost, 0, "no lease lost");
    t.equal(rep.cni.addFailed, 0, "every ADD not interrupted on purpose succeeded");
    t.equal(rep.cni.unreachable, 0, "every new pod reaches a long-lived pod on another node");
    t.equal(rep.cni.delFailed, 0, "every DEL succeeded the first time");

    const fwd = rep.restarts.list.map((x) => x.toForwardingMs).filter((x) => x !== undefined);
    t.ok(fwd.length > 0, `restarts of nodes with long-lived pods (${fwd.length})`);
    // The 1 s goal is a figure (bench/results/soak.*): start-up is CPU-bound, so on a
    // shared machine it moves with the load; and under tap every Node process, the
    // agents included, also loads tap's process tracker (about 0.3 s more each). Asserted here: every restart forwards again
    // well before any store outage could end (a restart waiting for the store would not).
    const budget = 3000 * Math.max(1, load);
    t.comment(
      `restart to forwarding p50 ${rep.restarts.toForwardingMs.p50} ms, p99 ${rep.restarts.toForwardingMs.p99} ms (goal 1000 ms; load ${load.toFixed(2)} per core)`,
    );
    t.ok(
      fwd.every((x) => x <= budget),
      `every restart forwards again within ${Math.round(budget)} ms: ${fwd.join(", ")}`,
    );
    t.equal(rep.ping.perKind.unexplained.outages, 0, "no outage outside a fault");
    t.equal(rep.ping.perKind["store-outage"].lost, 0, "a store outage costs pods nothing");
    if (minutes < 1.5) return;
    const n1 = rep.memory.find((m) => m.node === "n1" && m.growth);
    t.ok(n1, "the untouched agent is judged after its first minute");
    const g = n1?.growth;
    t.ok(
      g !== undefined && (g.oldSpaceMiB ?? g.heapMiB) <= 8 && g.rssMiB <= 24,
      `its memory stays flat (old space <= 8 MiB, RSS <= 24 MiB more): ${JSON.stringify(g)} MiB`,
    );

    t.same(await listLabNamespaces(), nsBefore, "the soak removed its lab");
  });
}
