// Three `vxtun agent` processes in three lab nodes sharing the embedded file store: the
// mesh is programmed within a second, pods (bridge addresses) reach each other, a
// stopped node's lease expires and its entries go, and a restarted node keeps its subnet.
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { meshComplete, pingBridges, startAgents, tempDir, waitFor } from "../fixtures/agents.js";

t.test(
  "file store: join, programme peers, leave by expiry, rejoin with the same subnet",
  async (t) => {
    if (skipUnlessRoot(t)) return;
    const lab = await NetnsLab.create(t);
    const { nodes } = await buildUnderlay(lab, 3);
    const storeDir = tempDir(t, "store");
    const ttl = 3;
    const extra = { store: { type: "file", dir: storeDir }, leaseTtlSeconds: ttl };
    const { agents, subnets } = await startAgents(t, lab, nodes, extra);
    t.same(
      [...subnets.values()],
      ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"],
      "each node leased its own /24 (x.x.0.0 skipped)",
    );
    const ms = await waitFor("full mesh", () => meshComplete(agents, subnets), 1000);
    t.pass(
      `every node routes the others' subnets and has their FDB entries ${ms} ms after the last join`,
    );

    const [a1, a2, a3] = agents;
    const ping = await pingBridges(lab, a1, "10.244.1.1", "10.244.2.1");
    t.equal(
      ping.code,
      0,
      `pod ping n1 -> n2 over the agents' mesh: ${ping.stdout.split("\n").at(-2)}`,
    );

    const r1 = await a1.report();
    t.equal(r1.store.kind, "file");
    t.ok(r1.store.ok && r1.store.watching, "agent op: store healthy and watched");
    t.same(
      r1.peers.map((p) => p.subnet).sort(),
      ["10.244.2.0/24", "10.244.3.0/24"],
      "agent op lists peers",
    );

    const t0 = Date.now();
    await a3.proc.stop();
    const gone = await waitFor(
      "n3's entries removed",
      async () =>
        !(await a1.routes()).includes("10.244.3.0/24") &&
        !(await a2.routes()).includes("10.244.3.0/24"),
      (ttl + 2) * 1000,
    );
    t.pass(
      `n3 stopped; its lease expired and its routes left n1 and n2 after ${Date.now() - t0} ms (TTL ${ttl} s; ${gone} ms of polling)`,
    );
    t.notOk((await a1.fdbDsts()).includes(nodes[2].address), "and its FDB entry");

    await a3.restart();
    t.equal((await a3.report()).subnet, "10.244.3.0/24", "restarted n3 re-claimed its subnet");
    const back = await waitFor("mesh again", () => meshComplete(agents, subnets), 1000);
    t.pass(`mesh complete again ${back} ms after n3's restart`);
  },
);
