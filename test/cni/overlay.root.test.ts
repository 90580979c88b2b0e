// Two nodes, each running `vxtun run` (vxlan, static peers) and the CNI server; two pods
// per node created through the plugin by libcni; every pod pings every other pod, across
// the overlay and across the node bridge. DEL then leaves no link and no lease.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { NetnsLab } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { runOk } from "../../src/system/exec.js";
import {
  type CniNodeFiles,
  cniTestEnv,
  driver,
  startCniServerIn,
  writeNodeFiles,
} from "../fixtures/cni.js";
import { startVxtun } from "../fixtures/vxtun.js";

const MAC = (i: number) => `02:00:00:00:0${i}:01`;

t.test("pods on two vxtun nodes reach each other", async (t) => {
  const env = cniTestEnv(t);
  if (!env) return;
  const { drv, dir, bin } = env;
  const lab = await NetnsLab.create(t);
  const nodes = (await buildUnderlay(lab, 2)).nodes;

  const pods: { node: number; ns: string; cid: string; ip: string }[] = [];
  const per: CniNodeFiles[] = [];
  for (const [k, n] of nodes.entries()) {
    const i = k + 1;
    const other = nodes[1 - k];
    const vx = await startVxtun(lab, n.ns, {
      name: n.name,
      mode: "vxlan",
      local: { address: n.address },
      device: { name: "vxtun0", address: `10.244.${i}.0/32`, vtepMac: MAC(i) },
      peers: [{ address: other.address, subnet: `10.244.${2 - k}.0/24`, vtepMac: MAC(2 - k) }],
    });
    t.teardown(vx.stop);
    const files = writeNodeFiles(dir, { node: i, dataplaneSocket: vx.socket });
    await startCniServerIn(lab, n.ns, files.agentSocket);
    per.push(files);
    for (const p of [1, 2]) {
      const ns = await lab.addNs(`n${i}p${p}`);
      const cid = `pod-${i}-${p}`;
      const r = await driver(lab, n.ns, drv.path, bin, per[k].cache, [
        "add",
        per[k].conflist,
        `/run/netns/${ns}`,
        cid,
        "eth0",
      ]);
      t.equal(r.code, 0, `ADD ${cid} ${r.code ? r.stdout : ""}`);
      const ip = (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0].address;
      pods.push({ node: i, ns, cid, ip: ip.split("/")[0] });
    }
    const status = await driver(lab, n.ns, drv.path, bin, per[k].cache, ["status", files.conflist]);
    t.equal(status.code, 0, `STATUS on node ${i} once the dataplane runs ${status.stdout}`);
  }

  for (const a of pods) {
    for (const b of pods) {
      if (a === b) continue;
      const r = await lab.exec(a.ns, ["ping", "-c", "1", "-W", "2", b.ip]);
      const how = a.node === b.node ? "over the node bridge" : "across the overlay";
      t.equal(r.code, 0, `${a.cid} (${a.ip}) -> ${b.cid} (${b.ip}) ${how}`);
    }
  }

  for (const p of pods) {
    const k = p.node - 1;
    const r = await driver(lab, nodes[k].ns, drv.path, bin, per[k].cache, [
      "del",
      per[k].conflist,
      `/run/netns/${p.ns}`,
      p.cid,
      "eth0",
    ]);
    t.equal(r.code, 0, `DEL ${p.cid}`);
  }
  for (const [k, n] of nodes.entries()) {
    const veths = await runOk(["ip", "-n", n.ns, "-br", "link", "show", "type", "veth"]);
    // eth0 is the node's underlay veth; nothing else may remain.
    t.same(
      veths
        .trim()
        .split("\n")
        .map((l) => l.split(/[\s@]/)[0]),
      ["eth0"],
      `node ${n.name}: only the underlay veth is left`,
    );
    const files = readdirSync(join(per[k].dataDir, "vxtun-test")).filter((f) => f !== "lock");
    t.same(
      files.filter((f) => !f.startsWith("last_reserved_ip")),
      [],
      `node ${n.name}: no lease left (${files.join(" ")})`,
    );
  }
});
