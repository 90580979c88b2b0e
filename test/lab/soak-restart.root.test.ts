// What the soak found, alone: an agent restarted while etcd is down used to wait for the
// store before it forwarded (its pods dark for the whole outage). Now it starts from the
// subnet and peers its state directory remembers, forwards at once, and confirms with
// the store once it is back, keeping its subnet.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { NetnsLab } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import * as fx from "../fixtures/agents.js";
import { ETCD_URL, LabEtcd, skipUnlessEtcd } from "../fixtures/etcd.js";

t.test("an agent restarted during an etcd outage forwards on its cached peers", async (t) => {
  if (skipUnlessEtcd(t)) return;
  const lab = await NetnsLab.create(t);
  const { switchNs, nodes } = await buildUnderlay(lab, 2);
  const etcd = await LabEtcd.create(lab, switchNs, fx.tempDir(t, "etcd"));
  await etcd.start();
  t.teardown(() => etcd.kill());
  const extra = { store: { type: "etcd", endpoints: [ETCD_URL] } };
  const { agents, subnets } = await fx.startAgents(t, lab, nodes, extra);
  const [a1, a2] = agents;
  await fx.waitFor("full mesh", () => fx.meshComplete(agents, subnets), 5000);
  const cached = JSON.parse(readFileSync(join(a2.dir, "state", "peers.json"), "utf8"));
  t.same(
    cached.map((p: { address: string }) => p.address),
    [nodes[0].address],
    "n2 caches the peer it programmed",
  );
  const gw1 = subnets.get(a1)!.replace(/0\/24$/, "1");
  const gw2 = subnets.get(a2)!.replace(/0\/24$/, "1");

  await etcd.kill();
  await a2.proc.stop();
  const t0 = Date.now();
  await a2.restart();
  const up = Date.now() - t0;
  const r = await a2.report();
  t.equal(r.subnet, subnets.get(a2), "the restarted agent runs on its remembered subnet");
  // The store's health turns bad at its first failed call, which may come a moment
  // after the control socket answers.
  await fx.waitFor(
    "the agent sees the store down",
    async () => !(await a2.report()).store.ok,
    5000,
  );
  t.pass("while the store is still down");
  t.same(await a2.routes(), [subnets.get(a1)], "with its cached peer's route");
  const ms = await fx.waitFor(
    "pods of n1 and n2 reach each other",
    async () => (await fx.pingBridges(lab, a1, gw1, gw2, 1)).code === 0,
    3000,
    0,
  );
  t.pass(`n2's gateway answers ${ms} ms after its agent answered (${up} ms to restart)`);

  await etcd.start();
  await fx.waitFor("stores back", () => fx.storesWatching(agents), 10_000, 100);
  t.ok(await fx.meshComplete(agents, subnets), "mesh unchanged once etcd is back");
  t.equal((await a2.report()).subnet, subnets.get(a2), "the store confirmed the same subnet");
});
