// The reference peer itself must be right before vxtun is judged against it: two
// kernel vxlan nodes programmed flannel-style reach each other's pod addresses.
import t from "tap";
import { addFlannelPeer, addKernelVxlan } from "../../src/lab/kernel-vxlan.js";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { runOk } from "../../src/system/exec.js";
import { podPing } from "../fixtures/traffic.js";

t.test("two flannel-style kernel vxlan nodes ping across the overlay", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const { nodes } = await buildUnderlay(lab, 2);
  const macs = ["02:00:00:00:01:01", "02:00:00:00:02:01"];
  for (const [i, n] of nodes.entries()) {
    const dev = await addKernelVxlan({
      ns: n.ns,
      local: n.address,
      underlayDev: n.dev,
      vtepIp: `10.244.${i + 1}.0`,
      vtepMac: macs[i],
    });
    // A "pod" address on loopback stands in for a pod behind the node.
    await runOk(["ip", "-n", n.ns, "addr", "add", `10.244.${i + 1}.1/32`, "dev", "lo"]);
    const j = 1 - i;
    await addFlannelPeer(n.ns, dev, {
      subnet: `10.244.${j + 1}.0/24`,
      vtepIp: `10.244.${j + 1}.0`,
      vtepMac: macs[j],
      publicIp: nodes[j].address,
    });
  }
  const r = await podPing(lab, nodes[0].ns, "10.244.1.1", "10.244.2.1", { count: 2 });
  t.equal(r.code, 0, `ping through kernel vxlan: ${r.stdout.split("\n").at(-3)}`);
});
