// Faults and probes: a device deleted under its reader, EAGAIN and ECONNREFUSED on
// send, and the offload probe (bad names: names.test.ts, no root needed).
import t from "tap";
import { parseIpv4 } from "../../src/encap/addr.js";
import { Batch } from "../../src/io/batch.js";
import type { ErrnoError } from "../../src/io/native.js";
import { Slab } from "../../src/io/slab.js";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { addrAdd, ip, linkDel, linkSetUp, linkShow } from "../../src/system/iproute.js";
import { withNetns } from "../../src/system/netns.js";
import { Device, TUN_F } from "../../src/tun/device.js";
import { probeOffloads } from "../../src/tun/probe.js";
import { UdpSocket } from "../../src/underlay/udp.js";
import { deviceInNs, fillBatch, sleep, waitFor } from "../fixtures/packet-io.js";

const A = parseIpv4("198.18.0.1")!;
const B = parseIpv4("198.18.0.2")!;

t.test("offload probe reports what this kernel accepts", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const ns = await lab.addNs("probe");
  const p = withNetns(ns, probeOffloads);
  t.comment(`probe: ${JSON.stringify(p)}`);
  for (const [k, v] of Object.entries(p)) t.type(v, "boolean", `${k} is a boolean`);
  t.ok(p.csum, "CSUM accepted");
  t.ok(p.csumTso4, "CSUM|TSO4 accepted");
  // The fd is closed in the thread pool (the unregister waits for RCU): gone soon after.
  let left = true;
  for (let i = 0; i < 100 && left; i++) {
    left = (await linkShow(ns)).some((l) => l.ifname.startsWith("vxtprobe"));
    if (left) await sleep(20);
  }
  t.notOk(left, "probe device gone with its fd");
});

t.test(
  "multi-queue and vnet header: queues share a name, reads carry virtio_net_hdr",
  async (t) => {
    if (skipUnlessRoot(t)) return;
    const lab = await NetnsLab.create(t);
    const ns = await lab.addNs("mq");
    const slab = new Slab({ count: 64 });
    const [q0, q1] = withNetns(ns, () => [
      Device.open({ kind: "tun", name: "vxtmq0", slab, multiQueue: true, vnetHdr: true }),
      Device.open({ kind: "tun", name: "vxtmq0", slab, multiQueue: true, vnetHdr: true }),
    ]);
    t.teardown(() => {
      q0.close();
      q1.close();
    });
    t.equal(q1.name, q0.name, "second queue attached to the same device");
    t.ok(q0.trySetOffload(TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6), "TSO accepted on a vnet TUN");
    q1.trySetOffload(TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6);
    await addrAdd(ns, q0.name, "10.244.4.1/24");
    await linkSetUp(ns, q0.name);
    const sock = withNetns(ns, () => UdpSocket.open({ slab, addr: parseIpv4("10.244.4.1")! }));
    t.teardown(() => sock.close());
    let v4 = 0;
    const onBatch = (b: Batch) => {
      for (let i = 0; i < b.count; i++) {
        // 10-byte virtio_net_hdr first, then the IPv4 packet.
        if (b.len[i] > 30 && slab.u8[b.off[i] + 10] === 0x45) v4++;
        slab.free(b.slot[i]);
      }
    };
    q0.startReading(new Batch(16), onBatch, (e) => t.fail(e.message));
    q1.startReading(new Batch(16), onBatch, (e) => t.fail(e.message));
    const tx = new Batch(16);
    for (let port = 1000; port < 1016; port++) {
      // Different ports: flows hash onto both queues.
      const slot = slab.alloc();
      tx.push(slot, slab.dataOffset(slot), 32, parseIpv4("10.244.4.2")!, port);
    }
    t.equal(sock.sendBatch(tx), 16);
    tx.freeSlots(slab);
    t.ok(await waitFor(() => v4 === 16), `16 packets behind a vnet header across queues (${v4})`);
  },
);

t.test("device deleted under a reader: error callback, reader stops, no crash", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { ns, slab, dev } = await deviceInNs(t, "tun", "vxtdel0", "10.244.5.1/24", 32);
  const errors: ErrnoError[] = [];
  dev.startReading(
    new Batch(8),
    (b) => {
      for (let i = 0; i < b.count; i++) slab.free(b.slot[i]);
    },
    (err) => errors.push(err),
  );
  await linkDel(ns, dev.name);
  t.ok(await waitFor(() => errors.length > 0), "error callback fired");
  t.equal(errors.length, 1, "exactly once");
  const e = errors[0];
  t.equal(e?.code, "EBADFD", "errno name");
  t.match(e?.message, /^tun vxtdel0: device detached/, `clear message: ${e?.message}`);
  t.notOk(e?.message.includes("\n"), "one line");
  const out = new Batch(1);
  out.push(0, slab.dataOffset(0), 20);
  t.equal(dev.writeBatch(out), 0, "writes to the dead device fail without throwing");
  t.ok(dev.counters().txErrors >= 1, "and are counted");
  dev.close();
  dev.close();
  t.ok(dev.closed, "close() idempotent");
  t.throws(
    () =>
      dev.startReading(
        new Batch(1),
        () => {},
        () => {},
      ),
    /closed/,
  );
});

t.test("persistent device survives close() when asked, goes away otherwise", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const ns = await lab.addNs("pers");
  const slab = new Slab({ count: 4 });
  const open = () =>
    withNetns(ns, () => Device.open({ kind: "tap", name: "vxtpers0", slab, persist: true }));
  const d1 = open();
  d1.closeDevice({ keep: true });
  t.equal((await linkShow(ns, "vxtpers0")).length, 1, "kept after close");
  const d2 = open(); // reattach to the same persistent device
  d2.closeDevice({ keep: false });
  await t.rejects(linkShow(ns, "vxtpers0"), /does not exist/, "deleted once not persistent");
  await t.rejects(
    ip(ns, ["link", "set", "dev", "nope0", "up"]),
    /^ip -n \S+ link set dev nope0 up: /,
  );
});

t.test("send errors are counted, not thrown: EAGAIN and ECONNREFUSED", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const nsA = await lab.addNs("a");
  const nsB = await lab.addNs("b");
  await lab.veth(nsA, "ua", nsB, "ub", { cidrA: "198.18.0.1/24", cidrB: "198.18.0.2/24" });
  const slab = new Slab({ count: 256 });

  // EAGAIN: datagrams to an address nobody answers ARP for wait in the neighbour queue
  // and keep holding the (tiny) send buffer, so sendmmsg soon reports EAGAIN.
  const a = withNetns(nsA, () => UdpSocket.open({ slab, addr: A, sndBuf: 1 }));
  t.teardown(() => a.close());
  const tx = new Batch(64);
  fillBatch(slab, tx, 64, 1000, parseIpv4("198.18.0.77")!, 9);
  const n = a.sendBatch(tx);
  tx.freeSlots(slab);
  const ca = a.counters();
  t.ok(n < 64, `sendBatch consumed ${n} of 64 and returned`);
  t.ok(ca.eagain >= 1, `EAGAIN counted (${ca.eagain})`);

  // ECONNREFUSED: nobody listens on B:9; B answers port unreachable, IP_RECVERR
  // delivers it to the unconnected socket, the next send reports it.
  const c = withNetns(nsA, () => UdpSocket.open({ slab, addr: A }));
  t.teardown(() => c.close());
  fillBatch(slab, tx, 1, 10, B, 9);
  t.equal(c.sendBatch(tx), 1);
  let refused = 0;
  for (let i = 0; i < 20 && refused === 0; i++) {
    await sleep(25);
    c.sendBatch(tx);
    refused = c.counters().econnrefused;
  }
  tx.freeSlots(slab);
  t.ok(refused >= 1, `ECONNREFUSED counted (${refused})`);
  t.ok(c.counters().errQueue >= 1, "ICMP error drained from the error queue");
});
