// oneSendGsoMaxSize (the CNI gives it to a pod's interface): a TCP super-packet no longer
// than it, cut at the tunnel MTU, fits one UDP_SEGMENT send with VXLAN + inner Ethernet
// in front of every segment; one more full segment would not. Every MTU the CNI accepts
// up to jumbo frames, exhaustively.
import t from "tap";
import {
  oneSendGsoMaxSize,
  podGsoMaxSize,
  UDP_MAX_PAYLOAD,
  UDP_MAX_SEGMENTS,
} from "../../src/io/gso-batch.js";

const HDRS = 52; // IPv4 + TCP with timestamps
const PREFIX = 22; // VXLAN + inner Ethernet

/** UDP payload bytes and segments of one send carrying a super-packet of `len` bytes. */
function send(len: number, mtu: number): { bytes: number; segs: number } {
  const mss = mtu - HDRS;
  const segs = Math.ceil((len - HDRS) / mss);
  return { bytes: segs * (PREFIX + HDRS) + (len - HDRS), segs };
}

t.test("fits one send, and is the largest whole-segment size that does", async (t) => {
  const bad: string[] = [];
  for (let mtu = 576; mtu <= 9000; mtu++) {
    const g = oneSendGsoMaxSize(mtu);
    const s = send(g, mtu);
    if (s.bytes > UDP_MAX_PAYLOAD || s.segs > UDP_MAX_SEGMENTS) bad.push(`${mtu}: too big`);
    const more = send(g + (mtu - HDRS), mtu);
    if (more.bytes <= UDP_MAX_PAYLOAD && more.segs <= UDP_MAX_SEGMENTS) {
      bad.push(`${mtu}: one more segment would fit`);
    }
  }
  t.same(bad.slice(0, 5), [], "every MTU 576..9000");
  t.equal(oneSendGsoMaxSize(1450), 61564, "MTU 1450: 44 segments of 1398 bytes + headers");
  t.equal(oneSendGsoMaxSize(9000), 7 * 8948 + HDRS, "MTU 9000: 7 jumbo segments");
  t.equal(oneSendGsoMaxSize(576), 64 * 524 + HDRS, "MTU 576: the 64-segment limit");
});

t.test("pods get it in the VXLAN modes only", async (t) => {
  t.equal(podGsoMaxSize("vxlan", 1450), 61564);
  t.equal(podGsoMaxSize("vxlan-l2", 1450), 61564);
  t.equal(podGsoMaxSize("ipip", 1480), undefined, "ipip: the kernel's default");
});
