// TUN/TAP devices inside test namespaces: packets the kernel routes to the device are
// read back byte-exact, in batches, straight out of the slab slot the addon filled.
import t from "tap";
import { parseIpv4, parseMac, readIpv4, readMac } from "../../src/encap/addr.js";
import { Batch } from "../../src/io/batch.js";
import { Slab } from "../../src/io/slab.js";
import { skipUnlessRoot } from "../../src/lab/netns.js";
import { neighReplace } from "../../src/system/iproute.js";
import { withNetns } from "../../src/system/netns.js";
import { UdpSocket } from "../../src/underlay/udp.js";
import { deviceInNs, fillBatch, readEach, readPayload, waitFor } from "../fixtures/packet-io.js";

const N = 32;
const LEN = 200;

t.test("TUN: a burst of kernel UDP datagrams is read back byte-exact in batches", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { ns, slab, dev } = await deviceInNs(t, "tun", "vxtt%d", "10.244.9.1/24", 256);
  t.match(dev.name, /^vxtt\d+$/, "template resolved by the kernel");

  const sock = withNetns(ns, () => UdpSocket.open({ slab, addr: parseIpv4("10.244.9.1")! }));
  t.teardown(() => sock.close());
  const dst = parseIpv4("10.244.9.2")!;
  const tx = new Batch(64);
  fillBatch(slab, tx, N, LEN, dst, 9999);
  t.equal(sock.sendBatch(tx), N, "sendmmsg took the whole burst");
  tx.freeSlots(slab);

  const seen = new Map<number, boolean>();
  let sameSlot = true;
  const reads = readEach(t, dev, slab, (b, i) => {
    const off = b.off[i];
    // The packet sits in the slot the addon popped, at headroom: no copy anywhere.
    if (off !== slab.dataOffset(b.slot[i])) sameSlot = false;
    const u8 = slab.u8;
    const ihl = (u8[off] & 0x0f) * 4;
    const isOurs =
      u8[off] >> 4 === 4 &&
      u8[off + 9] === 17 &&
      readIpv4(u8, off + 16) === dst &&
      ((u8[off + ihl + 2] << 8) | u8[off + ihl + 3]) === 9999;
    if (isOurs) {
      t.equal(b.len[i], ihl + 8 + LEN, "IPv4 + UDP + payload length");
      const body = u8.subarray(off + ihl + 8, off + b.len[i]);
      const p = readPayload(body, LEN);
      seen.set(p.index, p.exact);
    }
  });
  t.ok(await waitFor(() => seen.size === N), `all ${N} datagrams read from the TUN`);
  t.ok([...seen.values()].every(Boolean), "every payload byte-exact");
  t.ok(reads.maxBatch > 1, `one callback saw ${reads.maxBatch} packets`);
  t.ok(sameSlot, "batch.off is the slot's data offset (slot at headroom)");
  const c = dev.counters();
  t.ok(c.rxBatches < c.rxPackets, `batches ${c.rxBatches} < packets ${c.rxPackets}`);
  t.equal(slab.available, slab.count, "every slot back on the free stack");
});

t.test("TUN: an echo responder in TypeScript answers the kernel's ping (writeBatch)", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { lab, ns, slab, dev } = await deviceInNs(t, "tun", "vxtping0", "10.244.7.1/24", 64);
  const rx = new Batch(16);
  const out = new Batch(16);
  let echoed = 0;
  dev.startReading(
    rx,
    (b) => {
      out.clear();
      const u8 = slab.u8;
      for (let i = 0; i < b.count; i++) {
        const off = b.off[i];
        const ihl = (u8[off] & 0x0f) * 4;
        if (u8[off] >> 4 !== 4 || u8[off + 9] !== 1 || u8[off + ihl] !== 8) {
          slab.free(b.slot[i]);
          continue;
        }
        // Echo reply in place: swap addresses (IP checksum unchanged), type 8 -> 0 and
        // the ICMP checksum adjusted incrementally (RFC 1624).
        for (let k = 0; k < 4; k++) {
          const s = u8[off + 12 + k];
          u8[off + 12 + k] = u8[off + 16 + k];
          u8[off + 16 + k] = s;
        }
        u8[off + ihl] = 0;
        let sum = ((u8[off + ihl + 2] << 8) | u8[off + ihl + 3]) + 0x0800;
        sum = (sum & 0xffff) + (sum >>> 16);
        u8[off + ihl + 2] = sum >> 8;
        u8[off + ihl + 3] = sum & 0xff;
        out.push(b.slot[i], off, b.len[i]);
      }
      echoed += dev.writeBatch(out);
      out.freeSlots(slab);
    },
    (err) => t.fail(err.message),
  );
  const r = await lab.exec(ns, ["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.244.7.2"]);
  t.equal(r.code, 0, `ping through the TUN answered: ${r.stdout.split("\n").at(-3) ?? ""}`);
  t.equal(echoed, 3, "three replies written with writeBatch");
  t.equal(dev.counters().txPackets, 3);
});

t.test("TAP: Ethernet frames from the kernel are read back byte-exact", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { ns, slab, dev } = await deviceInNs(t, "tap", "vxtp0", "10.244.8.1/24", 256);
  const peerMac = parseMac("02:00:00:00:00:02")!;
  await neighReplace(ns, { dev: dev.name, addr: "10.244.8.2", lladdr: "02:00:00:00:00:02" });

  const sock = withNetns(ns, () => UdpSocket.open({ slab, addr: parseIpv4("10.244.8.1")! }));
  t.teardown(() => sock.close());
  const tx = new Batch(64);
  fillBatch(slab, tx, N, LEN, parseIpv4("10.244.8.2")!, 7777);
  t.equal(sock.sendBatch(tx), N);
  tx.freeSlots(slab);

  let good = 0;
  const reads = readEach(t, dev, slab, (b, i) => {
    const u8 = slab.u8;
    const off = b.off[i];
    const etherType = (u8[off + 12] << 8) | u8[off + 13];
    if (etherType === 0x0800 && readMac(u8, off) === peerMac && u8[off + 14 + 9] === 17) {
      const body = u8.subarray(off + 14 + 20 + 8, off + b.len[i]);
      if (b.len[i] === 14 + 20 + 8 + LEN && readPayload(body, LEN).exact) good++;
    }
  });
  t.ok(await waitFor(() => good === N), `${good}/${N} frames: dst MAC, EtherType, payload exact`);
  t.ok(reads.maxBatch > 1, `one callback saw ${reads.maxBatch} frames`);
});

t.test("backpressure: a reader with no free slots stops and resumes on free()", async (t) => {
  if (skipUnlessRoot(t)) return;
  // 8 slots for the reader; the sender uses its own slab.
  const { ns, slab, dev } = await deviceInNs(t, "tun", "vxtbp0", "10.244.6.1/24", 8);
  const txSlab = new Slab({ count: 64 });
  const sock = withNetns(ns, () =>
    UdpSocket.open({ slab: txSlab, addr: parseIpv4("10.244.6.1")! }),
  );
  t.teardown(() => sock.close());

  const held: number[] = [];
  let udp = 0;
  const rx = new Batch(4);
  dev.startReading(
    rx,
    (b) => {
      for (let i = 0; i < b.count; i++) {
        if (slab.u8[b.off[i] + 9] === 17) udp++;
        held.push(b.slot[i]); // keep them: the dataplane is "slow"
      }
    },
    (err) => t.fail(err.message),
  );
  const tx = new Batch(32);
  fillBatch(txSlab, tx, 32, 64, parseIpv4("10.244.6.2")!, 5555);
  t.equal(sock.sendBatch(tx), 32);
  tx.freeSlots(txSlab);
  t.ok(await waitFor(() => slab.poolExhausted > 0), "pool exhaustion counted");
  t.equal(held.length, 8, "reader stopped at 8 held slots, no allocation");
  t.ok(dev.counters().poolExhausted > 0, "reader counted the stall");
  // Give back slots until everything has arrived (bounded by the waitFor below).
  const drain = setInterval(() => {
    while (held.length) slab.free(held.pop()!);
  }, 5);
  t.ok(await waitFor(() => udp === 32), `reader resumed after free(): ${udp}/32 datagrams`);
  clearInterval(drain);
});
