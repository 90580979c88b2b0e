// One config for every node and the masquerade table, with real agents in lab nodes
// whose only underlay hint is their default route (to an outside host): the agents find
// eth0 and its address themselves; a node behind a 1:1 NAT advertises local.publicAddress
// and is reached there; the nft table is replaced, not duplicated, by a restart after a
// crash, removed at a clean stop, absent with ipMasq off (FLANNEL_IPMASQ says so); a bad
// interface or an unreadable certificate stops the agent with one line before any table
// or lease exists.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { addOutsideHost } from "../../src/lab/lab.js";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { masqueradeRules } from "../../src/system/nft.js";
import { pingBridges, startAgent, tempDir, waitFor } from "../fixtures/agents.js";

t.test("default-route underlay, publicAddress, masquerade table lifecycle", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const u = await buildUnderlay(lab, 2);
  await addOutsideHost(lab, u);
  const [n1, n2] = u.nodes;
  // n2 is reached at 198.18.0.102 and rewritten to its own 198.18.0.2 (a 1:1 NAT, as
  // in a cloud): the address takes ARP on the switch, nft turns it into n2's.
  await lab.execOk(n2.ns, ["ip", "addr", "add", "198.18.0.102/32", "dev", "eth0"]);
  await lab.execOk(n2.ns, ["nft", "-f", "-"], {
    input:
      "table ip test-nat {\n chain pre {\n  type nat hook prerouting priority dstnat;\n  ip daddr 198.18.0.102 dnat to 198.18.0.2\n }\n}\n",
  });
  const store = { type: "file", dir: tempDir(t, "masq-store") };
  const leases = () => readdirSync(join(store.dir, "subnets")).sort();
  const a1 = await startAgent(t, lab, n1, { store, local: {} });
  const a2 = await startAgent(t, lab, n2, {
    store,
    local: { interfaceRegex: "^eth", publicAddress: "198.18.0.102" },
  });
  const r1 = await a1.report();
  const r2 = await a2.report();
  t.same(
    (r1 as unknown as { local: unknown }).local,
    { address: n1.address, interface: "eth0" },
    "n1 (no local.*): eth0, from its default route",
  );
  t.equal(
    (r2 as unknown as { publicIp: string }).publicIp,
    "198.18.0.102",
    "n2 advertises local.publicAddress",
  );
  await waitFor(
    "n1 knows n2 by its public address",
    async () => (await a1.report()).peers.some((p) => p.address === "198.18.0.102"),
    5000,
  );
  const gw = (s: string) => s.replace(/0\/24$/, "1");
  const ping = await pingBridges(lab, a1, gw(r1.subnet), gw(r2.subnet));
  t.equal(ping.code, 0, `n1 -> n2 through n2's public address: ${ping.stdout.split("\n").at(-2)}`);

  const rules = await masqueradeRules("n1", n1.ns);
  t.equal(rules.length, 5, "n1: flannel's five masquerade rules");
  t.match(
    readFileSync(join(a1.dir, "subnet.env"), "utf8"),
    /^FLANNEL_IPMASQ=true$/m,
    "subnet.env: on",
  );

  // A crash leaves the table; the restart replaces it, no rule twice.
  a1.proc.child.kill("SIGKILL");
  await new Promise((r) => a1.proc.child.once("exit", r));
  t.same(await masqueradeRules("n1", n1.ns), rules, "a killed agent's table stays");
  await a1.restart();
  t.same(await masqueradeRules("n1", n1.ns), rules, "after the restart: the same five, once");

  await a1.proc.stop();
  t.same(await masqueradeRules("n1", n1.ns), [], "a clean stop removes the table");

  const off = await startAgent(t, lab, n1, { store, local: {}, ipMasq: false });
  t.match(
    readFileSync(join(off.dir, "subnet.env"), "utf8"),
    /^FLANNEL_IPMASQ=false$/m,
    "subnet.env: off",
  );
  t.same(await masqueradeRules("n1", n1.ns), [], "ipMasq: false: no table");
  await off.proc.stop();

  const before = leases();
  for (const [what, extra, line] of [
    [
      "an interface that is not there",
      { store, local: { interface: "eth9" } },
      /^vxtun: local\.interface eth9 not found in this network namespace \(have: .*\): fix local\.interface \(VXTUN_LOCAL_INTERFACE\)$/,
    ],
    [
      "an address on no interface",
      { store, local: { address: "192.0.2.1" } },
      /^vxtun: local\.address 192\.0\.2\.1 is not configured on any interface here/,
    ],
    [
      "an unreadable CA file",
      {
        local: {},
        store: {
          type: "etcd",
          endpoints: ["https://198.18.0.254:2379"],
          caFile: "/nonexistent/ca.pem",
        },
      },
      /^vxtun: store\.caFile \/nonexistent\/ca\.pem: cannot read it \(ENOENT\)$/,
    ],
  ] as const) {
    const err = await startAgent(t, lab, n1, extra).then(
      () => "",
      (e: Error) => e.message.replace(/^vxtun exited \(1\): /, ""),
    );
    t.equal(err.split("\n").length, 1, `${what}: one line`);
    t.match(err, line, `${what}: ${err}`);
    t.same(await masqueradeRules("n1", n1.ns), [], `${what}: no nft table`);
    t.same(leases(), before, `${what}: no lease`);
  }
});
