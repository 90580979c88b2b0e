// The node agent against a real etcd, in flannel's layout: three agents in three lab
// nodes join; a lease written by hand exactly as flanneld writes it is programmed, and
// ours reads back in flanneld's format; etcd is killed for 10 s and restarted while pods
// keep pinging (forwarding runs on last known state) and no lease is lost; a stopped
// agent's lease expires and its entries leave the others.
import t from "tap";
import { NetnsLab } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import {
  meshComplete,
  pingBridges,
  startAgents,
  storesWatching,
  tempDir,
  waitFor,
} from "../fixtures/agents.js";
import { ETCD_URL, LabEtcd, skipUnlessEtcd } from "../fixtures/etcd.js";

const PREFIX = "/coreos.com/network";

t.test("etcd: join, flannel interop, etcd outage, leave by expiry", async (t) => {
  if (skipUnlessEtcd(t)) return;
  const lab = await NetnsLab.create(t);
  const { switchNs, nodes } = await buildUnderlay(lab, 3);
  const etcd = await LabEtcd.create(lab, switchNs, tempDir(t, "etcd"));
  await etcd.start();
  t.teardown(() => etcd.kill());

  const ttl = 4;
  const extra = { store: { type: "etcd", endpoints: [ETCD_URL] }, leaseTtlSeconds: ttl };
  const { agents, subnets } = await startAgents(t, lab, nodes, extra);
  const [a1, a2, a3] = agents;
  const ms = await waitFor("full mesh", () => meshComplete(agents, subnets), 1000);
  t.pass(`3 agents on etcd: routes and FDB complete ${ms} ms after the last join`);

  // --- flannel's layout, both ways
  const config = JSON.parse(await etcd.ctlOk(["get", "--print-value-only", `${PREFIX}/config`]));
  t.same(config, {
    Network: "10.244.0.0/16",
    SubnetLen: 24,
    Backend: { Type: "vxlan", VNI: 1, Port: 8472 },
  });
  const ours = JSON.parse(
    await etcd.ctlOk(["get", "--print-value-only", `${PREFIX}/subnets/10.244.1.0-24`]),
  );
  t.same(
    Object.keys(ours).sort(),
    ["BackendData", "BackendType", "PublicIP"],
    "our lease: flanneld's keys only",
  );
  t.same(Object.keys(ours.BackendData).sort(), ["VNI", "VtepMAC"]);
  t.equal(ours.PublicIP, nodes[0].address);
  t.equal(ours.BackendType, "vxlan");
  t.match(ours.BackendData.VtepMAC, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  const leaseId = (await etcd.ctlOk(["lease", "grant", "60"])).match(
    /lease ([0-9a-f]+) granted/,
  )?.[1];
  t.ok(leaseId, "etcdctl granted a lease for the hand-written node");
  const flannelKey = `${PREFIX}/subnets/10.244.50.0-24`;
  const t0 = Date.now();
  await etcd.ctlOk([
    "put",
    `--lease=${leaseId}`,
    flannelKey,
    '{"PublicIP":"198.18.0.50","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:32:00"}}',
  ]);
  const seen = await waitFor(
    "flanneld-format lease programmed",
    async () =>
      (await a1.routes()).includes("10.244.50.0/24") &&
      (await a2.fdbDsts()).includes("198.18.0.50"),
    1000,
  );
  t.pass(
    `a flanneld-format lease was programmed ${seen} ms after the put (${Date.now() - t0} ms incl. etcdctl)`,
  );
  const neigh = (await a1.proc.call("neigh.show", { json: true })) as {
    dst: string;
    lladdr: string;
  }[];
  t.ok(
    neigh.some((n) => n.dst === "10.244.50.0" && n.lladdr === "0a:58:0a:f4:32:00"),
    "neighbour 10.244.50.0 -> its VtepMAC, as flanneld programs it",
  );
  await etcd.ctlOk(["lease", "revoke", leaseId!]);
  await waitFor(
    "hand lease removed",
    async () => !(await a1.routes()).includes("10.244.50.0/24"),
    1000,
  );
  t.pass("revoking its etcd lease removed it");

  // --- etcd outage: forwarding continues, agents reconnect, no lease lost
  const before = await etcd.getPrefix(`${PREFIX}/subnets/`);
  const pinging = pingBridges(lab, a1, "10.244.1.1", "10.244.2.1", 70); // 14 s at 5/s
  await new Promise((r) => setTimeout(r, 1000));
  await etcd.kill();
  const down = Date.now();
  await waitFor("agents notice", async () => !(await a1.report()).store.ok, 5000, 100);
  t.pass(`n1 reports the store unhealthy ${Date.now() - down} ms after etcd died`);
  await new Promise((r) => setTimeout(r, 10_000 - (Date.now() - down)));
  await etcd.start();
  const up = Date.now();
  const back = await waitFor("agents reconnected", () => storesWatching(agents), 8000, 100);
  t.pass(
    `all agents healthy and watching again ${back} ms after etcd restarted (${up - down} ms outage)`,
  );
  const ping = await pinging;
  const loss = ping.stdout.match(/(\d+)% packet loss/)?.[1];
  t.equal(loss, "0", `pod ping through the outage: ${ping.stdout.split("\n").at(-3)}`);
  await new Promise((r) => setTimeout(r, ttl * 1000)); // a full TTL after the restart
  const after = await etcd.getPrefix(`${PREFIX}/subnets/`);
  t.same([...after.keys()].sort(), [...before.keys()].sort(), "no lease lost across the outage");
  t.same(
    [...after.values()].map((v) => JSON.parse(v)),
    [...before.values()].map((v) => JSON.parse(v)),
  );
  t.ok(await meshComplete(agents, subnets), "mesh unchanged");

  // --- a node leaves: its lease expires, etcd deletes the key, the others drop it
  const stop = Date.now();
  await a3.proc.stop();
  await waitFor(
    "n3 removed",
    async () =>
      !(await a1.routes()).includes(subnets.get(a3)!) &&
      !(await a2.fdbDsts()).includes(nodes[2].address),
    (ttl + 3) * 1000,
    50,
  );
  t.pass(
    `n3 stopped: its lease expired and n1/n2 dropped it after ${Date.now() - stop} ms (TTL ${ttl} s)`,
  );
  t.ok(await meshComplete([a1, a2], subnets), "n1 <-> n2 intact");
});
