// Only configured peers may send to us: with allowPeers set, outer packets from any
// other underlay address are dropped and counted (peer_not_allowed), not decapsulated.
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { podPing } from "../fixtures/traffic.js";
import { vxtunPair } from "../fixtures/vxtun-pair.js";

t.test("allowPeers drops and counts packets from other sources", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  // Node 1 accepts only 198.18.0.9, which is not node 2.
  const { nodes, procs } = await vxtunPair(lab, (i) => ({
    allowPeers: i === 0 ? ["198.18.0.9"] : [],
  }));
  const r = await podPing(lab, nodes[1].ns, "10.244.2.1", "10.244.1.1", { wait: 1 });
  t.not(r.code, 0, "node 2's packets do not get through");
  const s = (await procs[0].call("stats")) as {
    counters: Record<string, number>;
    drops: Record<string, number>;
  };
  t.equal(s.drops.peer_not_allowed, 3, "each one dropped as peer_not_allowed");
  t.equal(s.counters.decap_packets, 0, "nothing decapsulated");
});
