// ADD failures through libcni and the agent's server: spec codes (not iproute2's text),
// and nothing half-made: no host veth, no lease left behind.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { ip, ipJson } from "../../src/system/iproute.js";
import { cniNode, startCniServerIn } from "../fixtures/cni.js";

t.test("a taken pod ifname, a 300-character container ID, a vanished netns", async (t) => {
  const n = await cniNode(t);
  if (!n) return;
  const { conflist, dataDir, lab, node, run } = n;
  const pod = await lab.addNs("p1");
  const netns = `/run/netns/${pod}`;
  await startCniServerIn(lab, node, n.agentSocket);
  const errOf = (r: { stdout: string; stderr: string }) => `${r.stdout}${r.stderr}`;
  const leases = () =>
    readdirSync(join(dataDir, "vxtun-test"), { withFileTypes: true })
      .map((d) => d.name)
      .filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n));
  const hostVeths = async () =>
    (await ipJson<{ ifname: string }[]>(node, ["link", "show", "type", "veth"])).map(
      (l) => l.ifname,
    );

  // eth0 already taken in the pod (by another plugin, say): dataplane error with errno text.
  await ip(pod, ["link", "add", "eth0", "type", "veth", "peer", "name", "other0"]);
  const taken = await run(["add", conflist, netns, "ctr-taken", "eth0"]);
  t.not(taken.code, 0, "ADD fails");
  t.match(errOf(taken), /code 100|"code":100/, "vxtun's dataplane code");
  t.match(errOf(taken), /EEXIST/, "says the name exists (errno, not iproute2's words)");
  t.same(await hostVeths(), [], "no host veth left");
  t.same(leases(), [], "no lease left");

  const long = await run(["add", conflist, netns, "c".repeat(300), "eth1"]);
  t.not(long.code, 0);
  t.match(errOf(long), /code 4|"code":4/, "a 300-character container ID: invalid env (4)");
  t.match(errOf(long), /CNI_CONTAINERID is 300 characters long/);

  const gone = await lab.addNs("gone");
  await ip("", ["netns", "del", gone]);
  const vanished = await run(["add", conflist, `/run/netns/${gone}`, "ctr-gone", "eth0"]);
  t.not(vanished.code, 0);
  t.match(errOf(vanished), /code 3|"code":3/, "a vanished netns: unknown container (3)");
  t.same(await hostVeths(), [], "still no host veth");
  t.same(leases(), [], "still no lease");

  // And the good case still works next to the leftovers of the failures.
  const ok = await run(["add", conflist, netns, "ctr-ok", "eth1"]);
  t.equal(ok.code, 0, errOf(ok));
  t.equal(leases().length, 1);
  t.equal((await run(["del", conflist, netns, "ctr-ok", "eth1"])).code, 0);
  t.same(await hostVeths(), []);
  t.same(leases(), []);
});
