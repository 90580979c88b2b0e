// USO through the overlay: an application in node 1 sends with UDP_SEGMENT (one
// sendmsg, 40 datagrams); the TUN hands vxtun the whole run (USO4 offload), vxtun cuts it
// into the sender's datagrams and node 2 receives every one, intact and in size. In
// vxlan mode they leave as UDP_SEGMENT sends, in ipip mode as one raw sendmmsg batch.
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { vxtunPair } from "../lib/pair.js";
import { udpSegmentRun } from "../lib/traffic.js";

const SIZE = 1000;
const PER_SEND = 40;
const SENDS = 5;

for (const mode of ["vxlan", "ipip"]) {
  t.test(
    `${mode}: UDP_SEGMENT runs from a pod reach the peer as the sender's datagrams`,
    async (t) => {
      if (skipUnlessRoot(t)) return;
      const lab = await NetnsLab.create(t);
      const { nodes, procs } = await vxtunPair(lab, () => ({}), mode);
      const info = (await procs[0].call("info")) as { offload: { tunOffloads: string[] } };
      if (!info.offload.tunOffloads.includes("uso4")) {
        t.plan(0, "this kernel's TUN does not take USO4|USO6");
        return;
      }
      const r = await udpSegmentRun(
        lab,
        {
          clientNs: nodes[0].ns,
          clientIp: "10.244.1.1",
          serverNs: nodes[1].ns,
          serverIp: "10.244.2.1",
        },
        SIZE,
        PER_SEND,
        SENDS,
      );
      t.ok(r.sent, `sent with UDP_SEGMENT ${r.stderr}`);
      t.equal(r.received, PER_SEND * SENDS, `node 2 received ${r.received} datagrams`);
      t.equal(r.intact, PER_SEND * SENDS, `each ${SIZE} bytes and intact`);
      const s = (await procs[0].call("stats")) as { counters: Record<string, number> };
      t.ok(
        s.counters.uso_superpackets >= 1,
        `vxtun took UDP super-packets (${s.counters.uso_superpackets})`,
      );
      t.equal(
        s.counters.uso_segments,
        s.counters.uso_superpackets * PER_SEND,
        "cut at the sender's size",
      );
    },
  );
}
