// One forwarding queue in a worker thread (see queues.ts): its own slab, TUN queue fd,
// underlay sockets and Forwarder over a copy of the tables. The thread inherits the
// main thread's network namespace, so the device and addresses are the same ones.
import { parentPort, workerData } from "node:worker_threads";
import { Batch } from "../io/batch.js";
import { Slab } from "../io/slab.js";
import { Device, TUN_F } from "../tun/device.js";
import { Forwarder } from "./forwarder.js";
import { NativeSummer } from "./offload/fastpath.js";
import { IO_ERROR_FIELDS, type QueueInit, type QueueMessage } from "./queues.js";
import { closeUnderlay, openUnderlay, sumIoErrors, type Underlay } from "./sockets.js";
import { Stats } from "./stats.js";
import { type TablesSnapshot, tablesFrom } from "./tables.js";

const port = parentPort!;
const { init, snapshot } = workerData as { init: QueueInit; snapshot: TablesSnapshot };
const say = (m: QueueMessage) => port.postMessage(m);

let device: Device | undefined;
let u: Underlay | undefined;
let timer: NodeJS.Timeout | undefined;
let seenTimer: NodeJS.Timeout | undefined;

function close(): void {
  if (timer) clearInterval(timer);
  if (seenTimer) clearInterval(seenTimer);
  if (u) closeUnderlay(u);
  device?.close();
  u = undefined;
  device = undefined;
}

try {
  const slab = new Slab(init.slab);
  device = Device.open({
    kind: init.device.kind,
    slab,
    name: init.device.name,
    multiQueue: true,
    ...(init.device.vnet
      ? { vnetHdr: true, vnetInHeadroom: true, offloads: init.device.offloads }
      : {}),
  });
  u = openUnderlay(init.underlay, slab, init.index);
  const stats = new Stats(init.stats);
  let t = tablesFrom(snapshot, init.tables);
  const dev = device;
  const fwd = new Forwarder(
    init.fwd,
    slab,
    t.fdb,
    t.neigh,
    t.routes,
    stats,
    u.tx,
    { sendBatch: (b, from, count) => dev.writeBatch(b, from, count) },
    init.device.vnet
      ? {
          pool: u.pool,
          raw: init.underlay.mode === "ipip" ? u.tx : undefined,
          udpSegment: init.udpSegment,
          usoWrites: (init.device.offloads & TUN_F.USO4) !== 0,
          tso6Writes: (init.device.offloads & TUN_F.TSO6) !== 0,
          rxGso: u.rxGso,
          summer: new NativeSummer(slab.buffer),
        }
      : undefined,
  );
  fwd.setTables6(t.routes6, t.neigh6);
  if (init.fwd.learning && init.device.kind === "tap") {
    // vxlan-l2: the main thread owns the FDB (queues.ts). New and moved MACs go there at
    // once; once a second, the learned MACs our frames refreshed, so they do not age.
    fwd.onLearn = (mac, remote) => say({ type: "learn", mac, remote });
    let last = performance.now();
    seenTimer = setInterval(() => {
      const now = performance.now();
      const macs: number[] = [];
      const remotes: number[] = [];
      for (const e of t.fdb.entries()) {
        if (!e.isStatic && e.updated > last) {
          macs.push(e.mac);
          remotes.push(e.remote);
        }
      }
      last = now;
      if (macs.length > 0) say({ type: "seen", macs, remotes });
    }, 1000);
  }
  const pmtu = (addr: number, _port: number, mtu: number) => say({ type: "pmtu", addr, mtu });
  u.tx.onPmtu = pmtu;
  for (const s of u.pool?.sockets ?? []) s.onPmtu = pmtu;
  const fatal = (err: Error) => {
    say({ type: "fatal", message: err.message });
    close();
  };
  device.startReading(new Batch(init.fwd.batch), fwd.fromDevice, fatal);
  u.rx.startReading(new Batch(init.fwd.batch), fwd.fromUnderlay, fatal);
  // Endpoint error counters live in the addon's per-fd arrays: publish them for
  // `vxtun stats` four times a second (they only move when something goes wrong).
  const io = new Float64Array(init.io);
  const u0 = u;
  timer = setInterval(() => {
    sumIoErrors(u0, dev, io);
    io[IO_ERROR_FIELDS.length] = slab.poolExhausted;
  }, 250);
  port.on("message", (m: { type: string; snapshot?: TablesSnapshot }) => {
    if (m.type === "tables" && m.snapshot) {
      t = tablesFrom(m.snapshot, init.tables);
      fwd.setTables(t.fdb, t.neigh, t.routes);
      fwd.setTables6(t.routes6, t.neigh6);
    } else if (m.type === "stop") {
      close();
      say({ type: "stopped" });
    }
  });
  say({ type: "ready" });
} catch (e) {
  close();
  say({ type: "fatal", message: (e as Error).message });
}
