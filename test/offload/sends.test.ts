// How the fast path lays out its sends (src/dataplane/send-offload.ts): the real
// Forwarder with capturing sockets (test/fixtures/forwarder-rig.ts). One read batch of a flow's TSO
// super-packets leaves as UDP_SEGMENT messages of at most 44 datagrams (what fits
// 65,507 bytes at MTU 1450); a super-packet's first segments top up the message the
// previous one left short, but nothing follows a short segment (the kernel cuts a
// message into equal datagrams). Every datagram is checked as a receiver would: VXLAN
// to node B, inner IPv4 and TCP checksums, sequence numbers in order, every payload byte.
import t from "tap";
import { read16, read32 } from "../../src/encap/bytes.js";
import { checksumFold, checksumSum, internetChecksum } from "../../src/encap/checksum.js";
import { ipv4PseudoHeaderSum } from "../../src/encap/ipv4.js";
import { Batch } from "../../src/io/batch.js";
import { forwarderRig, MSS, NODE_B, POD_B } from "../fixtures/forwarder-rig.js";

const SEG = 8 + 14 + 20 + 32 + MSS; // one full datagram: VXLAN, Ethernet, IPv4, TCP

/** Send super-packets of these payload sizes in one read batch; check every datagram. */
function sendOneBatch(payloads: number[]) {
  const rig = forwarderRig();
  const msgs: number[] = []; // datagrams per message, in send order
  const problems: string[] = [];
  let seq = 1000;
  let nextSeq = seq;
  rig.captureMessages((datagrams, remote) => {
    if (remote !== NODE_B) problems.push(`message ${msgs.length}: wrong remote`);
    for (const [n, d] of datagrams.entries()) {
      const why = checkDatagram(d, nextSeq);
      if (why) problems.push(`message ${msgs.length} datagram ${n}: ${why}`);
      nextSeq += d.length - 74;
    }
    msgs.push(datagrams.length);
  });
  const dev = new Batch(64);
  for (const p of payloads) {
    const slot = rig.slab.alloc();
    dev.push(slot, rig.slab.dataOffset(slot), rig.superPacket(slot, seq, p, true));
    seq += p;
  }
  rig.fwd.fromDevice(dev);
  if (nextSeq !== seq) problems.push(`stream ends at ${nextSeq}, expected ${seq}`);
  const c = rig.stats.snapshot().counters as Record<string, number>;
  return { msgs, problems, sends: c.gso_sends };
}

/** Why datagram `d` is not the next segment of the stream at `seq` (undefined: it is). */
function checkDatagram(d: Uint8Array, seq: number): string | undefined {
  if (d.length < 74 || d.length > SEG) return `length ${d.length}`;
  if (d[0] !== 0x08 || read32(d, 4) >>> 8 !== 1) return "VXLAN flags/VNI";
  if (read16(d, 20) !== 0x0800) return "inner EtherType";
  const ip = 22;
  if (read16(d, ip + 2) !== d.length - ip) return `IPv4 total length ${read16(d, ip + 2)}`;
  if (internetChecksum(d, ip, 20) !== 0) return "IPv4 header checksum";
  if (read32(d, ip + 16) >>> 0 !== POD_B) return "inner destination";
  const tcpLen = d.length - ip - 20;
  const sum = checksumSum(d, ip + 20, tcpLen) + ipv4PseudoHeaderSum(d, ip, 6, tcpLen);
  if (checksumFold(sum) !== 0xffff) return "TCP checksum";
  if (read32(d, ip + 24) >>> 0 !== seq >>> 0) return `seq ${read32(d, ip + 24)} != ${seq}`;
  for (let k = 74; k < d.length; k++) {
    const want = (seq + k - 74) & 0xff;
    if (d[k] !== want) return `payload byte ${k - 74}`;
  }
  return undefined;
}

t.test("full super-packets of one flow fill 44-datagram sends", async (t) => {
  const r = sendOneBatch([45 * MSS, 45 * MSS, 45 * MSS]);
  t.same(r.problems, [], "every datagram is the next segment, intact");
  t.same(r.msgs, [44, 44, 44, 3], "135 segments in 4 sends (6 without topping up)");
  t.equal(r.sends, 4, "gso_sends counts them");
});

t.test("nothing follows a short segment in a send", async (t) => {
  const r = sendOneBatch([45 * MSS - 100, 45 * MSS]);
  t.same(r.problems, [], "every datagram is the next segment, intact");
  t.same(r.msgs, [44, 1, 44, 1], "the short 45th segment ends its send");
});

t.test("a smaller super-packet tops up and continues", async (t) => {
  const r = sendOneBatch([45 * MSS, 10 * MSS, 3 * MSS]);
  t.same(r.problems, [], "every datagram is the next segment, intact");
  t.same(r.msgs, [44, 14], "1 + 10 + 3 segments in the second send");
});
