// vxlan-l2 NDP proxy: the node bridge's kernel solicits an IPv6 neighbour, vxtun
// answers from its IPv6 neighbour table (as proxy ARP does for IPv4, and the kernel's
// vxlan `proxy`), and the kernel, the judge, takes the advertisement: its neighbour
// entry holds the table's MAC. A miss floods the solicitation to the peer instead; with
// fdb.proxyArp off nothing is answered; the table's own owner gets no answer to its
// duplicate address detection (its address stays usable).
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay, type UnderlayNode } from "../../src/lab/underlay.js";
import { runOk } from "../../src/system/exec.js";
import { startVxtun } from "../fixtures/vxtun.js";

const OWNER_MAC = "02:00:00:00:02:99";

async function node(t: { teardown: (fn: () => unknown) => void }, proxyArp: boolean) {
  const lab = await NetnsLab.create(t);
  const [a, b] = (await buildUnderlay(lab, 2)).nodes;
  await runOk(["ip", "-n", a.ns, "link", "add", "br0", "type", "bridge"]);
  await runOk(["ip", "-n", a.ns, "link", "set", "br0", "mtu", "1450", "up"]);
  // The lab's namespaces start with IPv6 off (src/lab/underlay.ts): on for the bridge.
  await lab.execOk(a.ns, ["sysctl", "-qw", "net.ipv6.conf.br0.disable_ipv6=0"]);
  await runOk(["ip", "-n", a.ns, "addr", "add", "fd00::1/64", "dev", "br0", "nodad"]);
  const vx = await startVxtun(lab, a.ns, {
    name: a.name,
    mode: "vxlan-l2",
    local: { address: a.address },
    device: { name: "vxtap0", bridge: "br0" },
    peers: [{ address: b.address }],
    fdb: { proxyArp },
  });
  t.teardown(vx.stop);
  const counters = async () =>
    ((await vx.call("stats")) as { counters: Record<string, number> }).counters;
  return { lab, a, b, vx, counters };
}

/** The kernel's neighbour entry for `ip` on br0 in `a`'s namespace, after a ping. */
async function resolveFrom(lab: NetnsLab, a: UnderlayNode, ip: string) {
  await lab.exec(a.ns, ["ping", "-6", "-c", "1", "-W", "1", ip]);
  const out = await lab.execOk(a.ns, ["ip", "-j", "-6", "neigh", "show", ip, "dev", "br0"]);
  return (JSON.parse(out) as { lladdr?: string; state?: string[] }[])[0];
}

t.test("neighbour solicitations answered from the IPv6 neighbour table", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { lab, a, vx, counters } = await node(t, true);
  const add = await vx.cli(["neigh", "add", "fd00::2", "lladdr", OWNER_MAC]);
  t.equal(add.code, 0, `neigh add: ${add.stderr}`);
  const before = await counters();
  const e = await resolveFrom(lab, a, "fd00::2");
  t.equal(e?.lladdr, OWNER_MAC, `the kernel took the advertisement (${JSON.stringify(e)})`);
  t.notOk(e?.state?.includes("FAILED"), "the entry did not fail");
  const after = await counters();
  t.ok(after.ndp_proxied > before.ndp_proxied, `ndp_proxied ${after.ndp_proxied}`);

  // A miss: no answer, the solicitation goes to the peer (flooded).
  const miss = await resolveFrom(lab, a, "fd00::3");
  t.notOk(miss?.lladdr, `no MAC for an address not in the table (${JSON.stringify(miss)})`);
  const later = await counters();
  t.equal(later.ndp_proxied, after.ndp_proxied, "nothing proxied for a miss");
  t.ok(later.underlay_tx_packets > after.underlay_tx_packets, "the miss was flooded to the peer");

  // Duplicate address detection (NS from ::). The owner of fd00::2 (a pod port with
  // OWNER_MAC) adding its address gets no answer from vxtun; a pod with another MAC
  // claiming fd00::5, which the table gives to a remote MAC, is told it is taken.
  await lab.execOk(a.ns, ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=0"]);
  const pod = async (name: string, mac: string, addr: string) => {
    await runOk([
      "ip",
      "-n",
      a.ns,
      "link",
      "add",
      name,
      "address",
      mac,
      "type",
      "veth",
      "peer",
      `${name}br`,
    ]);
    await runOk(["ip", "-n", a.ns, "link", "set", `${name}br`, "master", "br0", "up"]);
    await runOk(["ip", "-n", a.ns, "link", "set", name, "up"]);
    await runOk(["ip", "-n", a.ns, "addr", "add", `${addr}/64`, "dev", name]);
  };
  await vx.cli(["neigh", "add", "fd00::5", "lladdr", "02:00:00:00:02:77"]);
  const beforeDad = (await counters()).ndp_proxied;
  await pod("pod0", OWNER_MAC, "fd00::2");
  await pod("pod1", "02:00:00:00:02:98", "fd00::5");
  // DAD takes 1 s (one probe, RetransTimer) once the link is up.
  await new Promise((r) => setTimeout(r, 3000));
  const show = (dev: string) => lab.execOk(a.ns, ["ip", "-6", "addr", "show", "dev", dev]);
  t.notMatch(await show("pod0"), /dadfailed/, "the owner's duplicate address detection passed");
  t.match(await show("pod1"), /fd00::5\/64 scope global dadfailed/, "a duplicate is refused");
  t.equal((await counters()).ndp_proxied, beforeDad + 1, "one DAD answered: the duplicate's");
});

t.test("fdb.proxyArp off: solicitations are flooded, not answered", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { lab, a, vx, counters } = await node(t, false);
  await vx.cli(["neigh", "add", "fd00::2", "lladdr", OWNER_MAC]);
  const e = await resolveFrom(lab, a, "fd00::2");
  t.notOk(e?.lladdr, `no answer (${JSON.stringify(e)})`);
  t.equal((await counters()).ndp_proxied, 0, "ndp_proxied stays 0");
});
