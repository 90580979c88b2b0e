// USO through the overlay: an application in node 1 sends with UDP_SEGMENT (one
// sendmsg, 40 datagrams); the TUN hands vxtun the whole run (USO4 offload), vxtun cuts it
// into the sender's datagrams and node 2 receives every one, intact, in size and in
// order. In vxlan mode they leave as UDP_SEGMENT sends, in ipip mode as one raw sendmmsg
// batch; node 2's vxtun merges them again into UDP_L4 GSO writes to its TUN.
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { udpSegmentRun } from "../fixtures/traffic.js";
import { vxtunPair } from "../fixtures/vxtun-pair.js";

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
      const ends = {
        clientNs: nodes[0].ns,
        clientIp: "10.244.1.1",
        serverNs: nodes[1].ns,
        serverIp: "10.244.2.1",
      };
      const r = await udpSegmentRun(lab, ends, SIZE, PER_SEND, SENDS);
      t.ok(r.sent, `sent with UDP_SEGMENT ${r.stderr}`);
      t.equal(r.received, PER_SEND * SENDS, `node 2 received ${r.received} datagrams`);
      t.equal(r.intact, PER_SEND * SENDS, `each ${SIZE} bytes and intact`);
      t.equal(r.inOrder, PER_SEND * SENDS, "in the order they were sent");
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
      // Node 2 merged them again: one UDP_L4 GSO write per run (or a few, as they
      // arrived), which its kernel cut back into the datagrams counted above.
      const r2 = (await procs[1].call("stats")) as { counters: Record<string, number> };
      const w = r2.counters.coalesced_udp_writes;
      const d = r2.counters.coalesced_udp_datagrams;
      t.ok(
        w >= SENDS && d >= 0.9 * PER_SEND * SENDS,
        `node 2 wrote ${d} datagrams as ${w} USO writes`,
      );
      t.equal(r2.counters.rx_inner_csum_bad, 0, "no checksum refused");
      // A receiver with UDP_GRO on gets each merged write whole: fewer reads than
      // datagrams, split back at the gso_size its kernel reports.
      const g = await udpSegmentRun(lab, ends, SIZE, PER_SEND, SENDS, true);
      t.equal(g.intact, PER_SEND * SENDS, "UDP_GRO receiver: every datagram intact");
      t.equal(g.inOrder, PER_SEND * SENDS, "UDP_GRO receiver: in order");
      t.ok(
        g.reads <= (PER_SEND * SENDS) / 2,
        `UDP_GRO receiver: ${g.reads} reads for ${g.received}`,
      );
    },
  );
}
