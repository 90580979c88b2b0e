// 20 ADDs at once on one node, through the agent's server and then through the Node
// slow path: 20 distinct addresses (the in-process IPAM takes host-local's file lock, so
// agent and slow-path processes exclude each other), 20 veths on the bridge, and 20
// concurrent DELs leave nothing.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { runOk } from "../../src/system/exec.js";
import { cniNode, startCniServerIn } from "../fixtures/cni.js";

const N = 20;

t.test("20 parallel ADDs and DELs", async (t) => {
  const n = await cniNode(t);
  if (!n) return;
  const { conflist, dataDir, lab, node, run: drive, agentSocket } = n;
  const pods: string[] = [];
  for (let i = 0; i < N; i++) pods.push(await lab.addNs(`p${i}`));
  const server = await startCniServerIn(lab, node, agentSocket);

  for (const shape of ["agent server", "Node slow path"]) {
    if (shape === "Node slow path") {
      server.kill("SIGKILL");
      await new Promise((r) => server.once("exit", r));
    }
    const run = (cmd: string, i: number) =>
      drive([cmd, conflist, `/run/netns/${pods[i]}`, `par-${i}`, "eth0"]);
    const t0 = Date.now();
    const adds = await Promise.all(pods.map((_, i) => run("add", i)));
    const addMs = Date.now() - t0;
    const failed = adds.filter((r) => r.code !== 0);
    t.equal(
      failed.length,
      0,
      `${shape}: all ${N} ADDs succeed in ${addMs} ms ${failed[0]?.stdout ?? ""}`,
    );
    const ips = adds
      .filter((r) => r.code === 0)
      .map((r) => (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0].address);
    t.equal(new Set(ips).size, N, `${shape}: ${N} distinct addresses`);
    const onBridge = await runOk(["ip", "-n", node, "-br", "link", "show", "master", "vxbr0"]);
    t.equal(onBridge.trim().split("\n").length, N, `${shape}: ${N} veths on the bridge`);
    for (let i = 0; i < N; i += 7) {
      const p = await lab.exec(pods[i], ["ping", "-c", "1", "-W", "2", "10.244.1.1"]);
      t.equal(p.code, 0, `${shape}: pod ${i} reaches its gateway`);
    }
    const dels = await Promise.all(pods.map((_, i) => run("del", i)));
    t.equal(dels.filter((r) => r.code !== 0).length, 0, `${shape}: all ${N} DELs succeed`);
    const left = await runOk(["ip", "-n", node, "-br", "link", "show", "type", "veth"]);
    t.equal(left.trim(), "", `${shape}: no veth left`);
    const leases = readdirSync(join(dataDir, "vxtun-test")).filter((f) => /^\d/.test(f));
    t.same(leases, [], `${shape}: no lease left`);
  }
});
