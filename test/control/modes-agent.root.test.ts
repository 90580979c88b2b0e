// The agent in its other two modes, on the file store: vxlan-l2 (one L2 segment: the
// bridges carry the network's /16 and the TAP is a bridge port) and ipip (routes only).
// Two nodes each; pods (bridge addresses) ping across.
import { existsSync } from "node:fs";
import t from "tap";
import { readNodeState } from "../../src/control/node-state.js";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { runOk } from "../../src/system/exec.js";
import { pingBridges, startAgent, tempDir, waitFor } from "../fixtures/agents.js";

for (const mode of ["vxlan-l2", "ipip"] as const) {
  t.test(`file store, ${mode}: two agents, pod ping`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const lab = await NetnsLab.create(t);
    const { nodes } = await buildUnderlay(lab, 2);
    const extra = { mode, store: { type: "file", dir: tempDir(t, "store") }, leaseTtlSeconds: 10 };
    const a1 = await startAgent(t, lab, nodes[0], extra);
    const a2 = await startAgent(t, lab, nodes[1], extra);
    const ms = await waitFor(
      "peers",
      async () => (await a1.report()).peers.length === 1 && (await a2.report()).peers.length === 1,
      1000,
    );
    t.pass(`each agent programmed the other ${ms} ms after the second joined`);
    const state = readNodeState(`${a1.dir}/subnet.env`);
    t.equal(state.mode, mode);
    t.equal(
      state.subnet,
      "10.244.1.1/24",
      "FLANNEL_SUBNET is the gateway with the subnet's prefix",
    );
    t.ok(existsSync(state.cniSocket), `the agent serves CNI on ${state.cniSocket}`);
    const addr = await runOk(["ip", "-n", nodes[0].ns, "-4", "-o", "addr", "show", "dev", "vxbr0"]);
    t.match(addr, mode === "vxlan-l2" ? "10.244.1.1/16" : "10.244.1.1/24", "bridge address");
    if (mode === "vxlan-l2") {
      const link = await runOk(["ip", "-n", nodes[0].ns, "-o", "link", "show", "dev", "vxtun0"]);
      t.match(link, "master vxbr0", "the TAP is a port of the node bridge");
    }
    const ping = await pingBridges(lab, a1, "10.244.1.1", "10.244.2.1");
    t.equal(ping.code, 0, `pod ping n1 -> n2: ${ping.stdout.split("\n").at(-2)}`);
  });
}
