// The CNI oracle: Debian's libcni drives ADD -> CHECK -> DEL -> DEL with vxtun followed
// by the reference portmap and bandwidth plugins; then DEL of a vanished netns, the
// slow path without an agent, GC and STATUS. Everything happens in a node namespace
// created here; the pods are namespaces created here too (docs/network-safety.md).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { ControlServer } from "../../src/api/server.js";
import { NetnsLab } from "../../src/lab/netns.js";
import { runOk } from "../../src/system/exec.js";
import { cniTestEnv, driver, startCniServerIn, writeNodeFiles } from "../fixtures/cni.js";

interface Result {
  cniVersion: string;
  interfaces: { name: string; mac?: string; sandbox?: string }[];
  ips: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
}

const leases = (dir: string) => {
  try {
    return readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  } catch {
    return [];
  }
};

t.test("libcni ADD/CHECK/DEL/GC/STATUS with vxtun + portmap + bandwidth", async (t) => {
  const env = cniTestEnv(t);
  if (!env) return;
  const { drv, dir, bin } = env;
  const dpSocket = join(dir, "dp.sock");
  const { conflist, dataDir, cache, agentSocket } = writeNodeFiles(
    dir,
    { node: 1, dataplaneSocket: dpSocket },
    { chained: true },
  );

  const lab = await NetnsLab.create(t);
  const node = await lab.addNs("n1");
  const pod = await lab.addNs("p1");
  const netns = `/run/netns/${pod}`;
  const server = await startCniServerIn(lab, node, agentSocket);
  // Capability arguments for the chain: bandwidth 1.1.1 dereferences a nil config in
  // CHECK when it has none. No port mappings: portmap 1.1.1's CHECK then looks for an
  // IPv6 DNAT chain it never created for an IPv4-only pod (a reference-plugin quirk).
  const caps = { bandwidth: { ingressRate: 1_000_000_000, ingressBurst: 100_000_000 } };
  const run = (args: string[]) => driver(lab, node, drv.path, bin, cache, args, caps);

  const add = await run(["add", conflist, netns, "ctr-1", "eth0"]);
  t.equal(add.code, 0, `ADD succeeds ${add.stdout}${add.stderr}`);
  const res = JSON.parse(add.stdout) as Result;
  t.equal(res.cniVersion, "1.0.0", "result in the config's version");
  t.match(res.interfaces[0].name, /^vx[0-9a-f]{11}$/, "host veth named vx + 11 hex");
  t.same(
    { name: res.interfaces[1].name, sandbox: res.interfaces[1].sandbox },
    { name: "eth0", sandbox: netns },
    "pod interface with its sandbox",
  );
  t.match(res.ips[0], { address: /^10\.244\.1\.\d+\/24$/, gateway: "10.244.1.1", interface: 1 });
  t.same(res.routes, [{ dst: "0.0.0.0/0", gw: "10.244.1.1" }], "default route via the gateway");
  const podIp = res.ips[0].address.split("/")[0];
  const podLink = JSON.parse(await runOk(["ip", "-n", pod, "-j", "addr", "show", "dev", "eth0"]));
  t.equal(podLink[0].mtu, 1450, "pod MTU = FLANNEL_MTU");
  // 44 full segments of 1398 bytes + headers: one UDP_SEGMENT send (tun/gso.ts).
  const gsoOf = async (ns: string, dev: string) =>
    JSON.parse(await runOk(["ip", "-n", ns, "-j", "-d", "link", "show", "dev", dev]))[0]
      .gso_max_size;
  t.equal(await gsoOf(pod, "eth0"), 61564, "pod end: gso_max_size for one send");
  t.equal(
    await gsoOf(node, res.interfaces[0].name),
    65536,
    "host end keeps 64 KiB (it carries coalesced writes to the pod)",
  );
  t.equal(podLink[0].address, res.interfaces[1].mac, "pod MAC as reported");
  const br = JSON.parse(await runOk(["ip", "-n", node, "-j", "addr", "show", "dev", "vxbr0"]));
  t.ok(
    br[0].addr_info.some((a: { local: string }) => a.local === "10.244.1.1"),
    "node bridge created with the gateway address",
  );
  const ping = await lab.exec(node, ["ping", "-c", "1", "-W", "2", podIp]);
  t.equal(ping.code, 0, "node reaches the pod over the bridge");

  const check = await run(["check", conflist, netns, "ctr-1", "eth0"]);
  t.equal(check.code, 0, `CHECK succeeds ${check.stdout}${check.stderr}`);
  await runOk(["ip", "-n", pod, "link", "set", "eth0", "mtu", "1400"]);
  const badCheck = await run(["check", conflist, netns, "ctr-1", "eth0"]);
  t.not(badCheck.code, 0, "CHECK notices a changed MTU");
  t.match(badCheck.stdout, /MTU 1400/, "and says so");

  const del = await run(["del", conflist, netns, "ctr-1", "eth0"]);
  t.equal(del.code, 0, `DEL succeeds ${del.stdout}${del.stderr}`);
  const del2 = await run(["del", conflist, netns, "ctr-1", "eth0"]);
  t.equal(del2.code, 0, `repeated DEL succeeds ${del2.stdout}`);
  const never = await run(["del", conflist, netns, "never-added", "eth0"]);
  t.equal(never.code, 0, `DEL without ADD succeeds ${never.stdout}`);
  const links = await runOk(["ip", "-n", node, "-br", "link", "show", "type", "veth"]);
  t.equal(links.trim(), "", "no veth left on the node");
  t.same(leases(join(dataDir, "vxtun-test")), [], "no lease left");

  // A pod whose namespace is gone before DEL.
  const gone = await lab.addNs("p2");
  const add2 = await run(["add", conflist, `/run/netns/${gone}`, "ctr-2", "eth0"]);
  t.equal(add2.code, 0, "ADD into a second pod");
  await runOk(["ip", "netns", "del", gone]);
  const del3 = await run(["del", conflist, `/run/netns/${gone}`, "ctr-2", "eth0"]);
  t.equal(del3.code, 0, `DEL with a vanished netns succeeds ${del3.stdout}`);
  t.same(leases(join(dataDir, "vxtun-test")), [], "its lease is released");

  // No agent: the shim falls back to the Node plugin, with the same behaviour.
  server.kill("SIGKILL");
  await new Promise((r) => server.once("exit", r));
  const slow = await run(["add", conflist, netns, "ctr-3", "eth0"]);
  t.equal(slow.code, 0, `ADD through the slow path ${slow.stdout}${slow.stderr}`);
  const slowDel = await run(["del", conflist, netns, "ctr-3", "eth0"]);
  t.equal(slowDel.code, 0, "DEL through the slow path");

  // GC keeps the valid attachment and removes the stale one (spec 1.1.0 verb).
  const p4 = await lab.addNs("p4");
  t.equal((await run(["add", conflist, netns, "keep", "eth0"])).code, 0, "ADD keep");
  t.equal((await run(["add", conflist, `/run/netns/${p4}`, "stale", "eth0"])).code, 0, "ADD stale");
  t.equal(leases(join(dataDir, "vxtun-test")).length, 2, "two leases before GC");
  const gc = await run(["gc", conflist, "keep/eth0"]);
  t.equal(gc.code, 0, `GC succeeds ${gc.stdout}`);
  t.equal(leases(join(dataDir, "vxtun-test")).length, 1, "GC released the stale lease");
  const vethAfterGc = await runOk(["ip", "-n", node, "-br", "link", "show", "type", "veth"]);
  t.equal(vethAfterGc.trim().split("\n").length, 1, "GC removed the stale veth only");
  const podGone = await lab.exec(p4, ["ip", "link", "show", "eth0"]);
  t.not(podGone.code, 0, "the stale pod's interface went with its veth");
  t.equal((await run(["del", conflist, netns, "keep", "eth0"])).code, 0, "DEL keep");

  // STATUS: code 50 until the dataplane answers.
  const down = await run(["status", conflist]);
  t.equal(down.code, 2, "STATUS fails without a dataplane");
  t.match(JSON.parse(down.stdout), { code: 50, msg: /does not answer/ });
  const dp = new ControlServer(dpSocket, { info: () => ({ name: "fake" }) });
  await dp.listen();
  t.teardown(() => dp.close());
  const up = await run(["status", conflist]);
  t.equal(up.code, 0, `STATUS succeeds once the dataplane answers ${up.stdout}`);
});
