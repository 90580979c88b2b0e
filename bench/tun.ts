// Device/socket layer benchmark (root; `node --import tsx bench/tun.ts`).
//
// Two test namespaces joined by a veth (198.18.0.1 <-> 198.18.0.2), a TUN in "a":
//   fwd: TUN read -> 8-byte header pushed into headroom -> UDP send to b   (encap-like)
//   rev: UDP recv (datagrams carry IPv4 packets) -> TUN write               (decap-like)
// each batched (up to 64 per syscall and per JS callback) and one packet per syscall
// (batch size 1), measured in the same run; plus raw IPIP send pps, our addon vs the
// `raw-socket` npm package. Traffic comes from a generator child process running in a
// namespace (`--gen`), so generator and forwarder get one core each. Every loop is
// bounded in time; the namespaces are removed at the end, also on failure.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, release, totalmem } from "node:os";
import { parseIpv4, writeIpv4 } from "../src/encap/addr.js";
import { Batch } from "../src/io/batch.js";
import { Slab } from "../src/io/slab.js";
import { NetnsLab, netnsUnavailableReason } from "../src/lab/netns.js";
import { addrAdd, linkSetUp } from "../src/system/iproute.js";
import { withNetns } from "../src/system/netns.js";
import { Device } from "../src/tun/device.js";
import { RawSocket } from "../src/underlay/raw.js";
import { UdpSocket } from "../src/underlay/udp.js";

const A = parseIpv4("198.18.0.1")!;
const B = parseIpv4("198.18.0.2")!;
const FWD_PORT = 4789;
const REV_PORT = 4790;
const WARMUP_MS = 300;
const MEASURE_MS = 1500;
const RUNS = 3;
const PKT = 64; // bytes of inner packet

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A 64-byte IPv4/UDP packet 10.244.9.9 -> dst:9 with a valid header checksum. */
function writeInner(u8: Uint8Array, off: number, dst: number, seq: number): void {
  u8.fill(0, off, off + PKT);
  u8[off] = 0x45;
  u8[off + 3] = PKT;
  u8[off + 8] = 64;
  u8[off + 9] = 17;
  writeIpv4(u8, off + 12, parseIpv4("10.244.9.9")!);
  writeIpv4(u8, off + 16, dst);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (u8[off + i] << 8) | u8[off + i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  u8[off + 10] = (~sum >> 8) & 0xff;
  u8[off + 11] = ~sum & 0xff;
  u8.set([0x30, 0x39, 0, 9, 0, PKT - 20, 0, 0], off + 20);
  u8[off + 28] = seq & 0xff;
}

// ---------------------------------------------------------------- generator child
/** `--gen <dstIp> <port> <ms> <innerDst|->`: blast 64-packet sendmmsg batches. */
async function generator(argv: string[]): Promise<void> {
  const [dstText, portText, msText, innerText] = argv;
  const dst = parseIpv4(dstText)!;
  const port = Number(portText);
  const slab = new Slab({ count: 128 });
  const sock = UdpSocket.open({ slab, sndBuf: 4 << 20 });
  const batch = new Batch(64);
  for (let i = 0; i < 64; i++) {
    const slot = slab.alloc();
    const off = slab.dataOffset(slot);
    if (innerText !== "-") writeInner(slab.u8, off, parseIpv4(innerText)!, i);
    batch.push(slot, off, PKT, dst, port);
  }
  process.stdout.write("ready\n");
  const end = Date.now() + Number(msText);
  // Bounded by time; setImmediate between batches keeps the loop responsive.
  while (Date.now() < end) {
    for (let k = 0; k < 16; k++) sock.sendBatch(batch);
    await new Promise((r) => setImmediate(r));
  }
  sock.close();
}

// ---------------------------------------------------------------- measurements
interface Env {
  lab: NetnsLab;
  nsA: string;
  nsB: string;
  dev: Device;
  slab: Slab;
}

async function startGenerator(env: Env, ns: string, args: string[]): Promise<() => void> {
  const ms = WARMUP_MS + MEASURE_MS + 500;
  const child = env.lab.spawn(ns, [
    process.execPath,
    "--import",
    "tsx",
    new URL(import.meta.url).pathname,
    "--gen",
    ...args.slice(0, 2),
    String(ms),
    args[2],
  ]);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("generator did not start")), 10_000);
    child.stdout?.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`generator exited (${code})`)));
  });
  return () => child.kill("SIGKILL");
}

/** Packets/s of counter `read()` over the measurement window. */
async function window(read: () => number): Promise<number> {
  await sleep(WARMUP_MS);
  const c0 = read();
  const t0 = process.hrtime.bigint();
  await sleep(MEASURE_MS);
  const c1 = read();
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  return (c1 - c0) / dt;
}

async function benchFwd(env: Env, batchSize: number): Promise<number> {
  const { slab, dev } = env;
  const out = withNetns(env.nsA, () => UdpSocket.open({ slab, addr: A, sndBuf: 4 << 20 }));
  const rx = new Batch(64);
  dev.startReading(
    rx,
    (b) => {
      // Encap-like: push an 8-byte header into the headroom, no copy of the packet.
      for (let i = 0; i < b.count; i++) {
        const off = b.off[i] - 8;
        slab.u8[off] = 0x08;
        b.off[i] = off;
        b.len[i] += 8;
        b.addr[i] = B;
        b.port[i] = FWD_PORT;
      }
      out.sendBatch(b, 0, b.count);
      b.freeSlots(slab);
    },
    (err) => {
      throw err;
    },
    batchSize,
  );
  const stop = await startGenerator(env, env.nsA, ["10.244.2.5", "9", "-"]);
  const pps = await window(() => out.stats[5]);
  stop();
  dev.stopReading();
  out.close();
  return pps;
}

async function benchRev(env: Env, batchSize: number): Promise<number> {
  const { slab, dev } = env;
  const inSock = withNetns(env.nsA, () =>
    UdpSocket.open({ slab, addr: A, port: REV_PORT, rcvBuf: 4 << 20 }),
  );
  const rx = new Batch(64);
  inSock.startReading(
    rx,
    (b) => {
      dev.writeBatch(b, 0, b.count);
      b.freeSlots(slab);
    },
    (err) => {
      throw err;
    },
    batchSize,
  );
  const before = dev.stats[5];
  const stop = await startGenerator(env, env.nsB, ["198.18.0.1", String(REV_PORT), "10.244.3.3"]);
  const pps = await window(() => dev.stats[5] - before);
  stop();
  inSock.close();
  return pps;
}

async function benchRawOurs(env: Env, batchSize: number): Promise<number> {
  const slab = new Slab({ count: 128 });
  const sock = withNetns(env.nsA, () => RawSocket.open({ slab, sndBuf: 4 << 20 }));
  const batch = new Batch(64);
  for (let i = 0; i < batchSize; i++) {
    const slot = slab.alloc();
    const off = slab.dataOffset(slot);
    writeInner(slab.u8, off, parseIpv4("10.244.2.5")!, i);
    writeOuter(slab.u8, off - 20);
    batch.push(slot, off - 20, PKT + 20, B, 0);
  }
  let sent = 0;
  const end = Date.now() + MEASURE_MS;
  const t0 = process.hrtime.bigint();
  while (Date.now() < end) {
    for (let k = 0; k < 64; k++) sent += sock.sendBatch(batch);
    await new Promise((r) => setImmediate(r));
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  sock.close();
  return sent / dt;
}

function writeOuter(u8: Uint8Array, off: number): void {
  u8.fill(0, off, off + 20);
  u8[off] = 0x45;
  u8[off + 3] = PKT + 20;
  u8[off + 6] = 0x40;
  u8[off + 8] = 64;
  u8[off + 9] = 4;
  writeIpv4(u8, off + 12, A);
  writeIpv4(u8, off + 16, B);
}

interface RawSocketLib {
  createSocket(o: { protocol: number }): {
    setOption(level: number, option: number, value: number): void;
    send(
      buf: Buffer,
      off: number,
      len: number,
      addr: string,
      cb: (err: Error | null, bytes: number) => void,
    ): void;
    close(): void;
  };
  SocketLevel: Record<string, number>;
  SocketOption: Record<string, number>;
}

type RawPkgSocket = ReturnType<RawSocketLib["createSocket"]>;

/** One raw-socket instance for all runs: closing one and opening another on the same
 * fd number stalled its sends here (its close does not uv_close the poll handle). */
function openRawSocketPkg(env: Env): RawPkgSocket | string {
  try {
    const lib = createRequire(import.meta.url)("raw-socket") as RawSocketLib;
    const sock = withNetns(env.nsA, () => lib.createSocket({ protocol: 4 }));
    sock.setOption(lib.SocketLevel.IPPROTO_IP, lib.SocketOption.IP_HDRINCL, 1);
    return sock;
  } catch (e) {
    return `raw-socket unavailable: ${(e as Error).message.split("\n")[0]}`;
  }
}

async function benchRawSocketPkg(sock: RawPkgSocket | string): Promise<number | string> {
  if (typeof sock === "string") return sock;
  const buf = Buffer.alloc(PKT + 20);
  writeOuter(buf, 0);
  writeInner(buf, 20, parseIpv4("10.244.2.5")!, 0);
  let done = 0;
  let inFlight = 0;
  const end = Date.now() + MEASURE_MS;
  const t0 = process.hrtime.bigint();
  // Keep 256 sends queued (it sends one per writable event); bounded by time, and a
  // guard timer so a stalled library cannot hang the bench.
  await new Promise<void>((resolve) => {
    const guard = setTimeout(resolve, MEASURE_MS + 2000);
    const onSent = (err: Error | null) => {
      inFlight--;
      if (!err) done++;
      if (Date.now() < end) {
        inFlight++;
        sock.send(buf, 0, buf.length, "198.18.0.2", onSent);
      } else if (inFlight === 0) {
        clearTimeout(guard);
        resolve();
      }
    };
    for (let i = 0; i < 256; i++) {
      inFlight++;
      sock.send(buf, 0, buf.length, "198.18.0.2", onSent);
    }
  });
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  return done / dt;
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  if (process.argv[2] === "--gen") {
    await generator(process.argv.slice(3));
    return;
  }
  const why = netnsUnavailableReason();
  if (why) {
    console.log(`bench/tun.ts skipped: ${why}`);
    return;
  }
  const lab = await NetnsLab.create();
  try {
    const nsA = await lab.addNs("ba");
    const nsB = await lab.addNs("bb");
    await lab.veth(nsA, "ua", nsB, "ub", { cidrA: "198.18.0.1/24", cidrB: "198.18.0.2/24" });
    const slab = new Slab({ count: 4096 });
    const dev = withNetns(nsA, () => Device.open({ kind: "tun", name: "vxtb0", slab }));
    await addrAdd(nsA, dev.name, "10.244.1.1/16");
    await linkSetUp(nsA, dev.name);
    // Sinks in b: hold the UDP port and protocol 4 so b drops silently (full receive
    // buffers) instead of answering with ICMP.
    const sinkSlab = new Slab({ count: 4 });
    const sinks = withNetns(nsB, () => [
      UdpSocket.open({ slab: sinkSlab, addr: B, port: FWD_PORT }),
      RawSocket.open({ slab: sinkSlab }),
    ]);
    const env: Env = { lab, nsA, nsB, dev, slab };
    const rows: [string, number | string, number | string, string, string][] = [];
    const runs = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(0)).join(" / ");
    const both = async (name: string, f: (bs: number) => Promise<number>) => {
      const batched: number[] = [];
      const single: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        batched.push(await f(64));
        single.push(await f(1));
      }
      rows.push([name, median(batched), median(single), runs(batched), runs(single)]);
      console.error(`${name}: batched ${batched.map(Math.round)} single ${single.map(Math.round)}`);
    };
    // Optional stage filter: `bench/tun.ts fwd raw` runs only those.
    const only = process.argv.slice(2);
    const want = (s: string) => only.length === 0 || only.includes(s);
    if (want("fwd")) await both("TUN read → UDP send (encap-like)", (bs) => benchFwd(env, bs));
    if (want("rev")) await both("UDP recv → TUN write (decap-like)", (bs) => benchRev(env, bs));
    const rawOurs: number[] = [];
    const rawOne: number[] = [];
    const rawPkg: (number | string)[] = [];
    const pkgSock = want("raw") ? openRawSocketPkg(env) : "not run";
    for (let r = 0; r < (want("raw") ? RUNS : 0); r++) {
      rawOurs.push(await benchRawOurs(env, 64));
      rawOne.push(await benchRawOurs(env, 1));
      rawPkg.push(await benchRawSocketPkg(pkgSock));
    }
    if (want("raw")) {
      rows.push([
        "raw IPIP send (vxtun addon)",
        median(rawOurs),
        median(rawOne),
        runs(rawOurs),
        runs(rawOne),
      ]);
      const pkgNums = rawPkg.filter((x): x is number => typeof x === "number");
      rows.push([
        "raw IPIP send (`raw-socket` npm, 1 per writable event)",
        "—",
        pkgNums.length ? median(pkgNums) : String(rawPkg[0]),
        "",
        runs(pkgNums),
      ]);
    }
    if (typeof pkgSock !== "string") pkgSock.close();
    for (const s of sinks) s.close();
    dev.close();

    const fmt = (x: number | string) =>
      typeof x === "number" ? `${(x / 1000).toFixed(1)} kpps` : x;
    const cpu = cpus();
    console.log(
      `\nMachine: ${cpu.length} × ${cpu[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
        `Linux ${release()}, Node ${process.version}; veth underlay, ${PKT}-byte inner packets; ` +
        `median of ${RUNS} runs of ${MEASURE_MS} ms; generator in a child process.\n`,
    );
    console.log(
      "| path | batched (≤64/syscall) | 1 packet/syscall | ratio | runs, kpps (batched; single) |",
    );
    console.log("|---|---|---|---|---|");
    for (const [name, b, s, rb, rs] of rows) {
      const ratio = typeof b === "number" && typeof s === "number" ? `${(b / s).toFixed(2)}×` : "";
      console.log(`| ${name} | ${fmt(b)} | ${fmt(s)} | ${ratio} | ${rb}; ${rs} |`);
    }
    console.log(`\nipip module loaded: ${existsSync("/sys/module/ipip") ? "yes" : "no"}`);
  } finally {
    await lab.cleanup();
  }
}

await main();
