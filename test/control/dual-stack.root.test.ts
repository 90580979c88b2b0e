// Dual stack in flannel's etcd layout against a real etcd: two agents lease an IPv6
// subnet beside the IPv4 one (keys "10.244.1.0-24&fd00:10:0:1::-64", BackendV6Data,
// FLANNEL_IPV6_* in subnet.env) and reach each other's IPv6 gateways over the IPv4
// underlay; a dual-stack lease written with etcdctl exactly as flanneld writes it
// (PublicIPv6, flannel-v6.1's own VTEP MAC) is programmed as flanneld programs
// flannel-v6.1, and leaves with its etcd lease. Over an IPv6 underlay the agents publish
// PublicIPv6 beside an IPv4 PublicIP and program FDB destinations at peers' PublicIPv6;
// a lease without one is logged once and counted, not programmed.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { enableOverlayIpv6, NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { masqueradeRules } from "../../src/system/nft.js";
import { pingBridges, startAgent, tempDir, waitFor } from "../fixtures/agents.js";
import { ETCD_URL, LabEtcd, skipUnlessEtcd } from "../fixtures/etcd.js";

const PREFIX = "/coreos.com/network";
const NET6 = "fd00:10::/48";

t.test(
  "etcd dual stack: IPv6 leases in flannel's layout, flanneld's lease programmed",
  async (t) => {
    if (skipUnlessEtcd(t)) return;
    const lab = await NetnsLab.create(t);
    const { switchNs, nodes } = await buildUnderlay(lab, 2);
    for (const n of nodes) await enableOverlayIpv6(n.ns, n.dev);
    const etcd = await LabEtcd.create(lab, switchNs, tempDir(t, "etcd6"));
    await etcd.start();
    t.teardown(() => etcd.kill());

    const extra = {
      store: { type: "etcd", endpoints: [ETCD_URL] },
      // Short: renewals (every third of it) run during the test and must keep both halves.
      leaseTtlSeconds: 3,
      ipv6Network: NET6,
    };
    const a1 = await startAgent(t, lab, nodes[0], extra);
    const a2 = await startAgent(t, lab, nodes[1], extra);

    // --- flannel's layout
    const config = JSON.parse(await etcd.ctlOk(["get", "--print-value-only", `${PREFIX}/config`]));
    t.same(config, {
      Network: "10.244.0.0/16",
      SubnetLen: 24,
      EnableIPv6: true,
      IPv6Network: NET6,
      IPv6SubnetLen: 64,
      Backend: { Type: "vxlan", VNI: 1, Port: 8472 },
    });
    const keys = [...(await etcd.getPrefix(`${PREFIX}/subnets/`)).keys()].sort();
    t.same(keys, [
      `${PREFIX}/subnets/10.244.1.0-24&fd00:10:0:1::-64`,
      `${PREFIX}/subnets/10.244.2.0-24&fd00:10:0:2::-64`,
    ]);
    const ours = JSON.parse(await etcd.ctlOk(["get", "--print-value-only", keys[0]]));
    t.same(Object.keys(ours).sort(), ["BackendData", "BackendType", "BackendV6Data", "PublicIP"]);
    t.same(ours.BackendV6Data, ours.BackendData, "one device: the same VNI and VTEP MAC");
    const env = readFileSync(join(a1.dir, "subnet.env"), "utf8");
    t.match(env, /FLANNEL_IPV6_NETWORK=fd00:10::\/48\nFLANNEL_IPV6_SUBNET=fd00:10:0:1::1\/64\n/);

    // --- the two agents reach each other's IPv6 gateways
    await waitFor(
      "IPv6 peers programmed",
      async () =>
        (await a1.routes()).includes("fd00:10:0:2::/64") &&
        (await a2.routes()).includes("fd00:10:0:1::/64"),
      5000,
    );
    const ping = await pingBridges(lab, a1, "fd00:10:0:1::1", "fd00:10:0:2::1", 3);
    t.match(ping.stdout, / 0% packet loss/, "n1's IPv6 gateway pings n2's through the tunnel");

    // --- a dual-stack lease written as flanneld writes it
    const leaseId = (await etcd.ctlOk(["lease", "grant", "60"])).match(
      /lease ([0-9a-f]+) granted/,
    )?.[1];
    const mac = "0a:58:0a:f4:32:00";
    const mac6 = "0a:58:0a:f4:32:06";
    const t0 = Date.now();
    await etcd.ctlOk([
      "put",
      `--lease=${leaseId}`,
      `${PREFIX}/subnets/10.244.50.0-24&fd00:10:0:50::-64`,
      JSON.stringify({
        PublicIP: "198.18.0.50",
        PublicIPv6: "fd99::50",
        BackendType: "vxlan",
        BackendData: { VNI: 1, VtepMAC: mac },
        BackendV6Data: { VNI: 1, VtepMAC: mac6 },
      }),
    ]);
    const seen = await waitFor(
      "flanneld dual-stack lease programmed",
      async () => (await a1.routes()).includes("fd00:10:0:50::/64"),
      2000,
    );
    t.pass(`flanneld's dual-stack lease programmed ${seen} ms after the put`);
    const routes = (await a1.proc.call("route.show")) as string;
    t.match(routes, "10.244.50.0/24 via 10.244.50.0 dev vxtun0 onlink");
    t.match(routes, "fd00:10:0:50::/64 via fd00:10:0:50:: dev vxtun0 onlink");
    const neigh = (await a1.proc.call("neigh.show", { json: true })) as {
      dst: string;
      lladdr: string;
    }[];
    t.ok(
      neigh.some((n) => n.dst === "fd00:10:0:50::" && n.lladdr === mac6),
      "IPv6 neighbour: the VTEP address -> BackendV6Data.VtepMAC",
    );
    const fdb = (await a1.proc.call("fdb.show", { json: true })) as { mac: string; dst: string }[];
    t.ok(
      fdb.some((f) => f.mac === mac6 && f.dst === "198.18.0.50"),
      "FDB: flannel-v6.1's MAC -> the node (over the IPv4 underlay)",
    );
    await etcd.ctlOk(["lease", "revoke", leaseId!]);
    await waitFor(
      "flanneld's lease removed",
      async () => {
        const r = await a1.routes();
        const f = (await a1.proc.call("fdb.show", { json: true })) as { mac: string }[];
        return !r.includes("fd00:10:0:50::/64") && !f.some((x) => x.mac === mac6);
      },
      2000,
    );
    t.pass(`revoked ${Date.now() - t0} ms after the put: both halves left`);

    // --- renewals and a restart keep both subnets under the one key
    await new Promise((r) => setTimeout(r, 3000));
    const now = async () => [...(await etcd.getPrefix(`${PREFIX}/subnets/`)).keys()].sort();
    t.same(await now(), keys, "renewed in place");
    const before = await a1.report();
    await a1.proc.stop();
    await a1.restart();
    const after = await a1.report();
    t.same([after.subnet, after.subnet6], [before.subnet, before.subnet6], "a restart keeps both");
    // With a 3 s TTL the old key can expire while the agent restarts: it forwards first
    // and confirms its lease in the background, under the same single key.
    await waitFor(
      "the lease confirmed",
      async () => JSON.stringify(await now()) === JSON.stringify(keys),
      5000,
    );
    t.same(await now(), keys, "no second key");
  },
);

t.test("dual stack: IPv6 pod traffic leaving the pod network is masqueraded", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const { nodes } = await buildUnderlay(lab, 1);
  const [n1] = nodes;
  await enableOverlayIpv6(n1.ns, n1.dev);
  // An IPv6 host outside the pod network, with no route back to it.
  const out = await lab.addNs("out6");
  await lab.veth(n1.ns, "eth6", out, "eth0");
  await lab.execOk(n1.ns, ["ip", "addr", "add", "fd99::1/64", "dev", "eth6", "nodad"]);
  await lab.execOk(out, ["ip", "addr", "add", "fd99::2/64", "dev", "eth0", "nodad"]);
  const store = { type: "file", dir: tempDir(t, "masq6") };
  const ping = () =>
    lab.exec(n1.ns, ["ping", "-c", "1", "-W", "2", "-I", "fd10:244:0:1::1", "fd99::2"]);
  const off = await startAgent(t, lab, n1, { store, ipv6Network: "fd10:244::/48", ipMasq: false });
  t.not((await ping()).code, 0, "ipMasq off: the outside host cannot answer a pod address");
  await off.proc.stop();
  const on = await startAgent(t, lab, n1, { store, ipv6Network: "fd10:244::/48" });
  t.equal((await masqueradeRules("n1", n1.ns, "ip6")).length, 5, "flannel's five rules for IPv6");
  const r = await ping();
  t.equal(r.code, 0, `masqueraded to fd99::1, answered: ${r.stdout.split("\n").at(-3)}`);
  await on.proc.stop();
  t.same(await masqueradeRules("n1", n1.ns, "ip6"), [], "a clean stop removes the IPv6 table");
});

t.test(
  "etcd dual stack over an IPv6 underlay: PublicIPv6 published and used, flanneld's lease programmed",
  async (t) => {
    if (skipUnlessEtcd(t)) return;
    const lab = await NetnsLab.create(t);
    // Nodes keep their IPv4 address (flannel's PublicIP; etcd listens there) beside the
    // IPv6 one the tunnel uses.
    const { switchNs, nodes } = await buildUnderlay(lab, 2, 1500, "ipv6");
    for (const n of nodes) await enableOverlayIpv6(n.ns);
    const etcd = await LabEtcd.create(lab, switchNs, tempDir(t, "etcd6u"));
    await etcd.start();
    t.teardown(() => etcd.kill());
    const extra = {
      store: { type: "etcd", endpoints: [ETCD_URL] },
      ipv6Network: NET6,
      metrics: { address: "127.0.0.1:9476" },
    };
    const a1 = await startAgent(t, lab, nodes[0], extra);
    const a2 = await startAgent(t, lab, nodes[1], extra);

    const leases = await etcd.getPrefix(`${PREFIX}/subnets/`);
    const values = [...leases.values()].map((v) => JSON.parse(v));
    t.same(
      values.map((v) => [v.PublicIP, v.PublicIPv6]).sort(),
      [
        ["198.18.0.1", "2001:2::1"],
        ["198.18.0.2", "2001:2::2"],
      ],
      "each lease: PublicIP the node's IPv4 address, PublicIPv6 its IPv6 underlay address",
    );
    await waitFor(
      "IPv6 peers programmed",
      async () => (await a1.fdbDsts()).includes("2001:2::2"),
      5000,
    );
    t.same(await a1.fdbDsts(), ["2001:2::2"], "n1's FDB sends to n2 over IPv6 only");
    const ping = await pingBridges(lab, a1, "fd00:10:0:1::1", "fd00:10:0:2::1", 3);
    t.match(ping.stdout, / 0% packet loss/, "IPv6 gateways reach each other over VXLAN/IPv6");
    const ping4 = await pingBridges(lab, a1, "10.244.1.1", "10.244.2.1", 3);
    t.match(ping4.stdout, / 0% packet loss/, "and the IPv4 ones, over the same IPv6 underlay");

    // --- flanneld's dual-stack lease, flannel-v6.1 over its IPv6 underlay address
    const grant = async () =>
      (await etcd.ctlOk(["lease", "grant", "60"])).match(/lease ([0-9a-f]+) granted/)?.[1];
    const leaseId = await grant();
    const mac = "0a:58:0a:f4:33:00";
    const mac6 = "0a:58:0a:f4:33:06";
    const flanneld = {
      PublicIP: "198.18.0.51",
      PublicIPv6: "2001:2::51",
      BackendType: "vxlan",
      BackendData: { VNI: 1, VtepMAC: mac },
      BackendV6Data: { VNI: 1, VtepMAC: mac6 },
    };
    await etcd.ctlOk([
      "put",
      `--lease=${leaseId}`,
      `${PREFIX}/subnets/10.244.51.0-24&fd00:10:0:51::-64`,
      JSON.stringify(flanneld),
    ]);
    await waitFor(
      "flanneld's lease programmed",
      async () => (await a1.routes()).includes("fd00:10:0:51::/64"),
      2000,
    );
    const fdb = (await a1.proc.call("fdb.show", { json: true })) as { mac: string; dst: string }[];
    t.same(
      fdb
        .filter((f) => f.mac === mac || f.mac === mac6)
        .map((f) => [f.mac, f.dst])
        .sort(),
      [
        [mac, "2001:2::51"],
        [mac6, "2001:2::51"],
      ].sort(),
      "FDB: both of flanneld's VTEP MACs -> its PublicIPv6",
    );
    const routes = (await a1.proc.call("route.show")) as string;
    t.match(routes, "10.244.51.0/24 via 10.244.51.0 dev vxtun0 onlink");
    t.match(routes, "fd00:10:0:51::/64 via fd00:10:0:51:: dev vxtun0 onlink");

    // --- a lease without PublicIPv6 cannot be reached over IPv6: logged once, counted
    const noV6 = await grant();
    const putNoV6 = () =>
      etcd.ctlOk([
        "put",
        `--lease=${noV6}`,
        `${PREFIX}/subnets/10.244.52.0-24&fd00:10:0:52::-64`,
        JSON.stringify({ ...flanneld, PublicIP: "198.18.0.52", PublicIPv6: null }),
      ]);
    await putNoV6();
    await waitFor(
      "the lease without PublicIPv6 ignored",
      async () => a1.proc.output().includes("no PublicIPv6 to reach it over our IPv6 underlay"),
      2000,
    );
    await putNoV6(); // as flanneld's renewal rewrites it
    await new Promise((r) => setTimeout(r, 500));
    t.notOk((await a1.routes()).includes("10.244.52.0/24"), "not programmed");
    const metrics = await lab.exec(nodes[0].ns, ["curl", "-s", "http://127.0.0.1:9476/metrics"]);
    t.match(metrics.stdout, /^vxtun_agent_leases_ignored_total 1$/m, "counted once");
    t.equal(
      a1.proc.output().split("no PublicIPv6 to reach it").length - 1,
      1,
      "one log line, not one per renewal",
    );
    await etcd.ctlOk(["lease", "revoke", leaseId!]);
    await waitFor(
      "flanneld's lease removed",
      async () => !(await a1.fdbDsts()).includes("2001:2::51"),
      2000,
    );
    t.same(await a2.fdbDsts(), ["2001:2::1"], "n2 programmed n1 only");
  },
);

t.test(
  "an IPv6 underlay without an IPv4 address for PublicIP stops the agent in one line",
  async (t) => {
    if (skipUnlessRoot(t)) return;
    const lab = await NetnsLab.create(t);
    const { nodes } = await buildUnderlay(lab, 1, 1500, "ipv6");
    const [n1] = nodes;
    await lab.execOk(n1.ns, ["ip", "-4", "addr", "flush", "dev", n1.dev]);
    const store = { type: "file", dir: tempDir(t, "noipv4") };
    await t.rejects(
      startAgent(t, lab, n1, { store }, 10_000),
      /the IPv6 underlay eth0 has no IPv4 address for the lease's PublicIP .*: add an IPv4 address to eth0/,
    );
  },
);
