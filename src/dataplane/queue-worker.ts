// One forwarding queue in a worker thread (see queues.ts): its own slab, TUN queue fd,
// underlay sockets and Forwarder over a copy of the tables. The thread inherits the
// main thread's network namespace, so the device and addresses are the same ones.
import { parentPort, workerData } from "node:worker_threads";
import { Batch } from "../tun/batch.js";
import { Device } from "../tun/device.js";
import { Slab } from "../tun/slab.js";
import { NativeSummer } from "./fastpath.js";
import { Forwarder } from "./forwarder.js";
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

function close(): void {
  if (timer) clearInterval(timer);
  if (u) closeUnderlay(u);
  device?.close();
  u = undefined;
  device = undefined;
}

try {
  const slab = new Slab(init.slab);
  device = Device.open({
    kind: "tun",
    slab,
    name: init.device.name,
    multiQueue: true,
    ...(init.device.vnet
      ? { vnetHdr: true, vnetInHeadroom: true, offloads: init.device.offloads }
      : {}),
  });
  u = openUnderlay(init.underlay, slab, init.index);
  const stats = new Stats(init.stats);
  const t = tablesFrom(snapshot, init.tables);
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
          rxGso: u.rxGso,
          summer: new NativeSummer(slab.buffer),
        }
      : undefined,
  );
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
      const n = tablesFrom(m.snapshot, init.tables);
      fwd.setTables(n.fdb, n.neigh, n.routes);
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
