// Two vxtun nodes on a lab underlay, peered as flanneld would peer them: node i has pod
// address 10.244.<i+1>.1 on lo, VTEP MAC 02:00:00:00:0<i+1>:01 and a route to the other
// node's 10.244.<j+1>.0/24. `extra(i)` adds or overrides config keys per node.
import type { NetnsLab } from "../../src/lab/netns.js";
import { runOk } from "../../src/lab/netns.js";
import { buildUnderlay, type UnderlayNode } from "../../src/lab/underlay.js";
import { startVxtun, type VxtunProc } from "./vxtun.js";

export async function vxtunPair(
  lab: NetnsLab,
  extra: (i: number) => Record<string, unknown> = () => ({}),
  mode = "vxlan",
): Promise<{ nodes: UnderlayNode[]; procs: VxtunProc[] }> {
  const nodes = (await buildUnderlay(lab, 2)).nodes;
  const procs: VxtunProc[] = [];
  for (const [i, n] of nodes.entries()) {
    const j = 1 - i;
    await runOk(["ip", "-n", n.ns, "addr", "add", `10.244.${i + 1}.1/32`, "dev", "lo"]);
    const more = extra(i);
    procs.push(
      await startVxtun(lab, n.ns, {
        name: n.name,
        mode,
        local: { address: n.address },
        peers: [
          {
            address: nodes[j].address,
            subnet: `10.244.${j + 1}.0/24`,
            vtepMac: `02:00:00:00:0${j + 1}:01`,
          },
        ],
        ...more,
        device: {
          name: "vxtun0",
          vtepMac: `02:00:00:00:0${i + 1}:01`,
          ...((more.device as object | undefined) ?? {}),
        },
      }),
    );
  }
  return { nodes, procs };
}
