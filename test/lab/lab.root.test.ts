// `vxtun lab` end to end, on the embedded store, in all three modes: 3 nodes × 2 pods,
// every pod reaches every other, and `lab down` leaves no namespace, link or process.
import { existsSync } from "node:fs";
import t from "tap";
import { LABS_DIR } from "../../src/lab/lab.js";
import { listLabNamespaces, skipUnlessRoot } from "../../src/lab/netns.js";
import { run } from "../../src/system/exec.js";
import { CLI, cliLab } from "../fixtures/vxtun.js";

for (const mode of ["vxlan", "vxlan-l2", "ipip"]) {
  t.test(`vxtun lab up --nodes 3 --pods 2 --mode ${mode}`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { name, lab, nsBefore, up } = await cliLab(t, "t", [
      "--nodes",
      "3",
      "--pods",
      "2",
      "--mode",
      mode,
    ]);
    t.match(up.stdout, /n3-p2 +on n3 +10\.244\.\d+\.\d+/, "prints the pods with addresses");
    const ping = await lab("ping");
    t.equal(ping.code, 0, "lab ping exits 0");
    t.match(ping.stdout, /30\/30 pairs reachable/, "all 30 pod pairs reach each other");
    const exec = await lab("exec", "n1-p1", "--", "ip", "-br", "addr", "show", "eth0");
    t.match(exec.stdout, /eth0@\S+ +UP +10\.244\./, `lab exec runs inside the pod ${exec.stderr}`);
    if (mode !== "ipip") {
      // Pod TCP through the CNI veth, the bridge (and in vxlan mode the node's routing)
      // must reach the TUN/TAP as TSO super-packets (a 64 KiB pod GSO packet once met a
      // 60000-byte TUN gso_max_size and was cut into 1.4 KB packets by the kernel before
      // us), and leave node 2's device as coalesced GSO writes.
      const dst = /n2-p1 +on n2 +(10\.244\.\d+\.\d+)/.exec(up.stdout)?.[1] ?? "";
      const server = lab("exec", "n2-p1", "--", "iperf3", "-s", "-1", "-p", "5301");
      await new Promise((r) => setTimeout(r, 500));
      const client = await lab("exec", "n1-p1", "--", "iperf3", "-c", dst, "-p", "5301", "-t", "2");
      t.equal(client.code, 0, `iperf3 pod to pod ${client.stderr}`);
      await server;
      const sock = `${LABS_DIR}/${name}/n1/dataplane.sock`;
      const st = await run([...CLI, "stats", "--json", "--socket", sock]);
      const c = JSON.parse(st.stdout).counters;
      t.ok(c.tso_superpackets > 1000, `super-packets from the pod (${c.tso_superpackets})`);
      const avg = c.tun_rx_bytes / c.tun_rx_packets;
      t.ok(avg > 16_000, `TUN reads average ${Math.round(avg)} bytes`);
      // The CNI's gso_max_size on the pod end: each super-packet fits one send
      // (without it, 64 KiB ones left as 44 + 1 segments: twice the sends).
      t.ok(
        c.gso_sends <= c.tso_superpackets * 1.02,
        `one UDP_SEGMENT send per super-packet (${c.gso_sends} sends, ${c.tso_superpackets} super-packets)`,
      );
      const sock2 = `${LABS_DIR}/${name}/n2/dataplane.sock`;
      const c2 = JSON.parse(
        (await run([...CLI, "stats", "--json", "--socket", sock2])).stdout,
      ).counters;
      t.ok(
        c2.coalesced_writes > 100 && c2.coalesced_segments > 5 * c2.coalesced_writes,
        `node 2 coalesced ${c2.coalesced_segments} segments into ${c2.coalesced_writes} writes`,
      );
    }
    const status = await lab("status");
    t.match(
      status.stdout,
      /n3 +pid \d+ +up, subnet 10\.244\.\d+\.0\/24, peers 2/,
      "status shows agents",
    );

    const down = await lab("down");
    t.equal(down.code, 0);
    t.same(await listLabNamespaces(), nsBefore, "no namespace left");
    const procs = await run(["pgrep", "-f", `labs/${name}/`]);
    t.equal(procs.stdout.trim(), "", "no process left");
    t.notOk(existsSync(`${LABS_DIR}/${name}`), "no lab state left");
    const links = await run(["ip", "-o", "link", "show"]);
    t.notMatch(links.stdout, /vxbr0|vxtun0|vxtap0/, "no link of ours in the root namespace");
  });
}
