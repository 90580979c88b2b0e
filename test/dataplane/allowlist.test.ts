// Only configured peers may send to us: with allowPeers set, outer packets from any
// other underlay address are dropped and counted (peer_not_allowed), not decapsulated.
import t from "tap";
import { NetnsLab, runOk, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { startVxtun } from "../lib/vxtun.js";

t.test("allowPeers drops and counts packets from other sources", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const nodes = (await buildUnderlay(lab, 2)).nodes;
  const procs = [];
  for (const [i, n] of nodes.entries()) {
    const j = 1 - i;
    await runOk(["ip", "-n", n.ns, "addr", "add", `10.244.${i + 1}.1/32`, "dev", "lo"]);
    const vx = await startVxtun(lab, n.ns, {
      name: n.name,
      mode: "vxlan",
      local: { address: n.address },
      device: { name: "vxtun0", vtepMac: `02:00:00:00:0${i + 1}:01` },
      peers: [
        {
          address: nodes[j].address,
          subnet: `10.244.${j + 1}.0/24`,
          vtepMac: `02:00:00:00:0${j + 1}:01`,
        },
      ],
      // Node 1 accepts only 198.18.0.9, which is not node 2.
      allowPeers: i === 0 ? ["198.18.0.9"] : [],
    });
    t.teardown(vx.stop);
    procs.push(vx);
  }
  const r = await lab.exec(nodes[1].ns, [
    "ping",
    "-c",
    "3",
    "-i",
    "0.2",
    "-W",
    "1",
    "-I",
    "10.244.2.1",
    "10.244.1.1",
  ]);
  t.not(r.code, 0, "node 2's packets do not get through");
  const s = (await procs[0].call("stats")) as {
    counters: Record<string, number>;
    drops: Record<string, number>;
  };
  t.equal(s.drops.peer_not_allowed, 3, "each one dropped as peer_not_allowed");
  t.equal(s.counters.decap_packets, 0, "nothing decapsulated");
});
