// hostPort through the conflist `vxtun install-cni` writes (vxtun, then the reference
// portmap plugin): libcni adds a pod on node n1 with a port mapping (runtimeConfig
// portMappings, as a container runtime passes it), and a client in node n2's namespace
// reaches the pod's server at n1's underlay address and the host port. portmap's
// iptables rules live in n1's namespace, which goes away with the test.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { defaultConflist } from "../../src/cni/install.js";
import { NetnsLab } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { startAgents } from "../fixtures/agents.js";
import { cniTestEnv, driver } from "../fixtures/cni.js";

t.test("install-cni's conflist: a pod's hostPort reached from another node", async (t) => {
  const env = cniTestEnv(t);
  if (!env) return;
  const { drv, dir, bin } = env;
  const lab = await NetnsLab.create(t);
  const { nodes } = await buildUnderlay(lab, 2);
  const store = { type: "file", dir: join(dir, "store") };
  const { agents } = await startAgents(t, lab, nodes, { store });
  const [a1] = agents;
  const conf = defaultConflist({
    stateFile: join(a1.dir, "subnet.env"),
    agentSocket: join(a1.dir, "cni.sock"),
    dataDir: join(dir, "ipam"),
  });
  t.same(
    (conf.plugins as { type: string }[]).map((p) => p.type),
    ["vxtun", "portmap"],
    "vxtun, then portmap",
  );
  const conflist = join(dir, "10-vxtun.conflist");
  writeFileSync(conflist, JSON.stringify(conf));

  const pod = await lab.addNs("pod");
  const cache = join(dir, "cache");
  const portMappings = [{ hostPort: 30080, containerPort: 80, protocol: "tcp" }];
  const add = await driver(
    lab,
    a1.node.ns,
    drv.path,
    bin,
    cache,
    ["add", conflist, `/run/netns/${pod}`, "hp1", "eth0"],
    { portMappings },
  );
  t.equal(add.code, 0, add.code === 0 ? "libcni ADD with portMappings" : add.stdout + add.stderr);
  const natRules = async () =>
    (await lab.exec(a1.node.ns, ["iptables", "-t", "nat", "-S"])).stdout.includes("30080");
  t.ok(await natRules(), "portmap's DNAT rule for 30080, in n1's namespace");
  const podIp = (JSON.parse(add.stdout) as { ips: { address: string }[] }).ips[0].address;
  const server = lab.exec(pod, ["timeout", "10", "nc", "-l", "-n", "80"]);
  await new Promise((r) => setTimeout(r, 500));
  const client = await lab.exec(nodes[1].ns, [
    "sh",
    "-c",
    `echo hello-hostport | nc -n -N -w 3 ${nodes[0].address} 30080`,
  ]);
  t.equal(client.code, 0, `n2 connects to ${nodes[0].address}:30080 ${client.stderr}`);
  t.equal(
    (await server).stdout.trim(),
    "hello-hostport",
    `the pod (${podIp}) on n1 got n2's bytes through its hostPort`,
  );
  const del = await driver(
    lab,
    a1.node.ns,
    drv.path,
    bin,
    cache,
    ["del", conflist, `/run/netns/${pod}`, "hp1", "eth0"],
    { portMappings },
  );
  t.equal(del.code, 0, `libcni DEL ${del.stdout}`);
  t.notOk(await natRules(), "DEL removed it");
});
