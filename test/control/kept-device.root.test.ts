// The agent keeps its device (device.persist, on by default for the agent, as flanneld
// keeps flannel.1): while the agent is down, its pods' packets for other nodes meet the
// routes into the device and are dropped there, instead of leaving by the node's default
// route unencapsulated with pod addresses. A restart attaches to the kept device, removes
// routes for peers it no longer has, and replaces a device whose flags no longer fit.
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { ip } from "../../src/system/iproute.js";
import { meshComplete, pingBridges, startAgents, tempDir, waitFor } from "../fixtures/agents.js";

/** The kernel's routes into vxtun0 in `ns`, as prefixes. */
async function deviceRoutes(ns: string): Promise<string[]> {
  const rows = JSON.parse(await ip(ns, ["-j", "route", "show", "dev", "vxtun0"])) as {
    dst: string;
  }[];
  return rows.map((r) => r.dst).sort();
}

async function txDropped(ns: string): Promise<number> {
  const [l] = JSON.parse(await ip(ns, ["-j", "-s", "link", "show", "vxtun0"])) as {
    stats64: { tx: { dropped: number } };
  }[];
  return l.stats64.tx.dropped;
}

t.test("a killed agent's device stays and drops; its restart reattaches and sweeps", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const { nodes } = await buildUnderlay(lab, 2);
  const extra = { store: { type: "file", dir: tempDir(t, "store") } };
  const { agents, subnets } = await startAgents(t, lab, nodes, extra);
  await waitFor("full mesh", () => meshComplete(agents, subnets), 5000);
  const [a1, a2] = agents;
  const ns2 = a2.node.ns;
  const gw1 = subnets.get(a1)!.replace(/0\/24$/, "1");
  const gw2 = subnets.get(a2)!.replace(/0\/24$/, "1");

  const exited = new Promise((r) => a2.proc.child.once("exit", r));
  a2.proc.child.kill("SIGKILL");
  await exited;
  t.same(await deviceRoutes(ns2), [subnets.get(a1)], "n2's route to n1's pods outlives its agent");
  // As a packet from a pod on n2's bridge (not the bridge's own address: a martian).
  const pod2 = gw2.replace(/1$/, "5");
  const route = await ip(ns2, ["route", "get", gw1, "from", pod2, "iif", "vxbr0"]).catch(
    (e: Error) => e.message,
  );
  t.match(route, /dev vxtun0/, `a pod's packet for n1 still goes into the device: ${route.trim()}`);
  const before = await txDropped(ns2);
  const ping = await pingBridges(lab, a2, gw2, gw1, 2);
  t.not(ping.code, 0, "no answer while the agent is down");
  t.ok((await txDropped(ns2)) >= before + 2, "the device dropped the pings (no reader)");

  // A route for a peer that went away while the agent was down.
  await ip(ns2, ["route", "add", "10.244.99.0/24", "dev", "vxtun0"]);
  await a2.restart();
  t.same(
    await deviceRoutes(ns2),
    [subnets.get(a1)],
    "the restart reattached and removed the stale route",
  );
  await waitFor(
    "pods reach each other",
    async () => (await pingBridges(lab, a2, gw2, gw1, 1)).code === 0,
    5000,
  );
  t.pass("forwarding again through the kept device");

  // A device of that name with other flags (a TAP, single queue): replaced, not refused.
  await a2.proc.stop();
  await ip(ns2, ["link", "del", "vxtun0"]).catch(() => undefined);
  await ip(ns2, ["tuntap", "add", "dev", "vxtun0", "mode", "tap"]);
  await a2.restart();
  const link = await ip(ns2, ["-d", "link", "show", "vxtun0"]);
  t.match(link, /tun type tun/, "recreated as the TUN the mode needs");
  await waitFor(
    "pods reach each other",
    async () => (await pingBridges(lab, a2, gw2, gw1, 1)).code === 0,
    5000,
  );
  t.pass("and forwarding");
});
