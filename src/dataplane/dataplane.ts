// One vxtun instance: opens the device and the underlay sockets in the current network
// namespace, programs the kernel side (MTU, addresses, routes into the TUN) and owns the
// tables, with the operations the control verbs call (src/api/handlers.ts; the socket
// is served by whoever runs the instance). The per-packet work is the Forwarder's.
import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import { availableParallelism } from "node:os";
import type { Logger } from "pino";
import { UserError } from "../api/errors.js";
import type { ControlTarget } from "../api/handlers.js";
import { formatIpv4, formatMac, parseCidr, parseIpv4, parseMac } from "../encap/addr.js";
import { parseIpv6 } from "../encap/addr6.js";
import { DfPolicy } from "../encap/ipip.js";
import {
  Fdb,
  Learn,
  Neigh6Table,
  NeighTable,
  parsePrefix,
  parsePrefix6,
  type RouteSpec,
  RouteTable,
  RouteTable6,
  TableError,
} from "../fdb/index.js";
import { Batch } from "../io/batch.js";
import { type ErrnoError, native } from "../io/native.js";
import { Slab } from "../io/slab.js";
import { interfaceAddr, RTPROT_BOOT, unlessKind, withNetlink } from "../system/netlink.js";
import { Device, TUN_F } from "../tun/device.js";
import { probeOffloads } from "../tun/probe.js";
import { PeerTable6 } from "../underlay/peers6.js";
import type { RawSocket } from "../underlay/raw.js";
import type { UdpSocket } from "../underlay/udp.js";
import {
  type Config,
  deviceMtu,
  dfPolicy,
  IPV6_OUTER_EXTRA,
  isIpv6Underlay,
  tunnelOverhead,
  vtepMac,
} from "./config.js";
import {
  Forwarder,
  type ForwarderOptions,
  FRAG_INNER,
  FRAG_OUTER,
  INHERIT,
  MODE_IPIP,
  MODE_VXLAN,
  MODE_VXLAN_L2,
} from "./forwarder.js";
import { type FastPathInfo, NativeSummer, type UdpSenderPool } from "./offload/fastpath.js";
import { IO_ERROR_FIELDS, QueueSet } from "./queues.js";
import { openUnderlay, sumIoErrors, type Underlay, type UnderlaySpec } from "./sockets.js";
import { C, Stats } from "./stats.js";

/**
 * Node flags for a process that forwards packets; V8 reads them only at start
 * (setFlagsFromString later has no effect), so the launchers pass them: the shebang of
 * bin/vxtun.js and vxtunCommand() (labs, tests, benches).
 * - --no-memory-reducer: V8's memory reducer runs full compacting GCs once allocation
 *   slows down, which for a forwarder that allocates nothing per packet means in the
 *   middle of traffic: 10-29 ms pauses on every thread ~8 s after start (--trace-gc,
 *   bench/fastpath.ts). Our heaps are small and steady: there is nothing to reduce.
 * - --min-semi-space-size=16 (MB): what little the I/O callbacks allocate (~56 bytes
 *   each, inside N-API) filled a worker thread's default young generation every ~8 s
 *   (a 0.6-1.3 ms scavenge); with 16 MB no GC ran in a 20 s iperf3 run on any thread.
 */
export const DATAPLANE_NODE_FLAGS = ["--no-memory-reducer", "--min-semi-space-size=16"];
const NO_MEMORY_REDUCER = DATAPLANE_NODE_FLAGS[0];

/** The current network namespace, for src/system/netlink. */
const HERE = "";

export interface PeerSpec {
  /** Remote node's underlay address (a lease's PublicIP). */
  address: string;
  /**
   * The node's IPv6 underlay address (a lease's PublicIPv6): where packets go when our
   * underlay is IPv6 (flannel-v6.1's FDB entries point there). Else unused.
   */
  publicIpv6?: string;
  /** Remote node's pod subnet. */
  subnet?: string;
  /** Remote VTEP MAC (vxlan mode). */
  vtepMac?: string;
}

export class Dataplane implements ControlTarget {
  readonly stats = new Stats();
  readonly fdb: Fdb;
  readonly neigh: NeighTable;
  readonly routes: RouteTable;
  /** IPv6 routes and neighbours of the L3 modes (`route add fd00::/64 …`). */
  readonly routes6: RouteTable6;
  readonly neigh6: Neigh6Table;
  readonly mac: number;
  readonly mtu: number;
  /** The underlay's MTU when we started, and what that leaves for inner packets. */
  readonly underlayMtu: number;
  readonly tunnelMtu: number;
  readonly peers = new Map<string, PeerSpec>();
  /** IPv6 underlay: peers are numbered in this table (peers6.ts); undefined on IPv4. */
  readonly peers6: PeerTable6 | undefined;
  private metrics: Server | undefined;
  /** The device was there before we opened it: kept by an earlier run (device.persist). */
  private reattached = false;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Offload fast path: what was probed and chosen, its sender pool and GRO sizes. */
  fastInfo: FastPathInfo = fastPathOff("off");
  private pool: UdpSenderPool | undefined;
  private rxGso: Uint16Array | undefined;
  private underlay: Underlay | undefined;
  /** Forwarding queues: how many and why (decideQueues); workers for queues 1.. */
  queueInfo: { count: number; why: string } = { count: 1, why: "" };
  private queues: QueueSet | undefined;

  private constructor(
    readonly cfg: Config,
    readonly log: Logger,
    readonly slab: Slab,
    readonly device: Device,
    readonly rx: UdpSocket | RawSocket,
    readonly tx: RawSocket,
    underlayMtu: number,
    peers6: PeerTable6 | undefined,
  ) {
    this.mac = vtepMac(cfg);
    this.mtu = deviceMtu(cfg, underlayMtu);
    this.underlayMtu = underlayMtu;
    this.peers6 = peers6;
    this.tunnelMtu = underlayMtu - this.overhead;
    const dev = device.name;
    this.fdb = new Fdb({
      dev,
      vni: cfg.vni,
      dstPort: cfg.port,
      ageingMs: cfg.fdb.ageingSeconds * 1000,
      maxAddress: cfg.fdb.maxAddress,
      ...(peers6 !== undefined
        ? {
            remotes: {
              parse: (v, what) => this.remoteOf(v, what),
              format: (n) => peers6.format(n),
            },
          }
        : {}),
    });
    this.neigh = new NeighTable({ dev });
    this.routes = new RouteTable({ dev });
    this.routes6 = new RouteTable6({ dev });
    this.neigh6 = new Neigh6Table({ dev });
  }

  /** Open everything, program the kernel, start forwarding (and serving metrics). */
  static async start(cfg: Config, log: Logger): Promise<Dataplane> {
    if (!process.execArgv.includes(NO_MEMORY_REDUCER)) {
      log.warn(
        `node runs without ${NO_MEMORY_REDUCER}: expect 10-30 ms GC pauses in traffic ~8 s after start (start vxtun through bin/vxtun.js or the lab)`,
      );
    }
    const v6 = isIpv6Underlay(cfg.local.address);
    const local = v6 ? 0 : parseIpv4(cfg.local.address)!;
    const peers6 = v6 ? new PeerTable6() : undefined;
    const underlayMtu = await findUnderlayMtu(cfg);
    const mtu = deviceMtu(cfg, underlayMtu);
    const fast = decideFastPath(cfg);
    // A slot holds headroom + the largest frame the device can hand us (MTU + Ethernet);
    // on the fast path a TSO super-packet or a UDP_GRO datagram (up to 64 KiB).
    const slotSize = fast.on
      ? 128 + 65536
      : Math.max(2048, 2 ** Math.ceil(Math.log2(128 + mtu + 18)));
    const slots = fast.on ? Math.min(cfg.io.slots, 512) : cfg.io.slots;
    const slab = new Slab({ count: slots, slotSize, headroom: 128 });
    const queues = decideQueues(cfg, v6);
    const kept = keptDevice(cfg.device.name);
    const open = () =>
      Device.open({
        kind: cfg.mode === "vxlan-l2" ? "tap" : "tun",
        slab,
        name: cfg.device.name,
        persist: cfg.device.persist ?? false,
        multiQueue: queues.count > 1,
        ...(fast.on ? { vnetHdr: true, vnetInHeadroom: true, offloads: fast.tunOffloads } : {}),
      });
    let device: Device;
    try {
      device = open();
    } catch (e) {
      // A device kept by an earlier run with other flags (TUN and now TAP, or another
      // queue count): TUNSETIFF refuses to attach to it. It is ours: replace it.
      if ((e as ErrnoError).code !== "EINVAL" || !kept) throw e;
      log.warn({ device: cfg.device.name }, "kept device has other flags; recreating it");
      withNetlink(HERE, (nl) => nl.delLink(cfg.device.name));
      device = open();
    }
    const df = dfPolicy(cfg);
    const spec: UnderlaySpec = {
      mode: cfg.mode,
      localIp: local,
      port: cfg.port,
      fast: fast.on,
      udpGro: fast.info.udpGro,
      batch: cfg.io.batch,
      sportLo: cfg.sourcePortRange[0],
      sportHi: cfg.sourcePortRange[1],
      sourcePorts: cfg.io.sourcePorts,
      // IPv6 has no DF bit: "dont" lets the kernel fragment at the source, "do" reports
      // EMSGSIZE once an ICMPv6 Packet Too Big has lowered the path MTU.
      pmtuDisc: df === "unset" ? "dont" : v6 ? "do" : "probe",
      ttl: cfg.policy.ttl === "inherit" ? 0 : cfg.policy.ttl,
      queues: queues.count,
    };
    let u: Underlay;
    try {
      u = openUnderlay(
        spec,
        slab,
        0,
        peers6 !== undefined ? { addr: parseIpv6(cfg.local.address)!, peers: peers6 } : undefined,
      );
    } catch (e) {
      device.close();
      throw e;
    }
    const { rx, tx, pool, rxGso } = u;
    if (fast.on) {
      if (!rxGso) fast.info.udpGro = false;
      if (pool) fast.info.sourcePorts = [...pool.ports];
    }
    const dp = new Dataplane(cfg, log, slab, device, rx, tx, underlayMtu, peers6);
    dp.reattached = kept;
    dp.fastInfo = fast.info;
    dp.underlay = u;
    dp.pool = pool;
    dp.rxGso = rxGso;
    dp.queueInfo = queues;
    if (pool) for (const s of pool.sockets) s.onPmtu = (addr, _port, m) => dp.lowerPmtu(addr, m);
    try {
      await dp.configureDevice();
      for (const p of cfg.peers) await dp.addPeer(p);
      dp.startForwarding();
      if (queues.count > 1) {
        dp.queues = await QueueSet.start(
          queues.count,
          {
            device: {
              name: device.name,
              kind: cfg.mode === "vxlan-l2" ? "tap" : "tun",
              offloads: fast.tunOffloads,
              vnet: fast.on,
            },
            slab: { count: slots, slotSize, headroom: 128 },
            underlay: spec,
            fwd: dp.forwarderOptions(),
            udpSegment: fast.info.udpSegment,
            tables: { dev: device.name, vni: cfg.vni, dstPort: cfg.port },
          },
          dp,
          log,
          {
            pmtu: (addr, mtu) => dp.lowerPmtu(addr, mtu),
            fatal: (message) => dp.fatal(new Error(message)),
            learn: (mac, remote) => dp.learnFromQueue(mac, remote, false),
            seen: (mac, remote) => dp.learnFromQueue(mac, remote, true),
          },
        );
      }
      if (cfg.metrics) {
        // Loaded here, after forwarding has started: prom-client takes tens of
        // milliseconds to load, which a restarted node's pods should not wait for.
        const { serveMetrics } = await import("./metrics.js");
        dp.metrics = await serveMetrics(cfg.metrics.address, dp);
      }
    } catch (e) {
      await dp.stop();
      throw e;
    }
    log.info(
      {
        mode: cfg.mode,
        device: device.name,
        mtu,
        vtepMac: formatMac(dp.mac),
        local: cfg.local.address,
        port: cfg.port,
        vni: cfg.vni,
        offload: fast.info.state,
      },
      "vxtun dataplane running",
    );
    return dp;
  }

  private async configureDevice(): Promise<void> {
    const dev = this.device.name;
    const address = this.cfg.device.address;
    const want = address === undefined ? undefined : interfaceAddr(address);
    if (address !== undefined && !want) {
      throw new UserError(`device.address "${address}" is not an IPv4 address/prefix`);
    }
    withNetlink(HERE, (nl) => {
      const idx = nl.link(dev).index;
      nl.setLink(idx, { mtu: this.mtu });
      if (this.cfg.mode === "vxlan-l2") {
        nl.setLink(idx, { mac: formatMac(this.mac) });
        const br = this.cfg.device.bridge;
        if (br) {
          const master = nl.index(br);
          if (master === undefined) throw new UserError(`device.bridge ${br} does not exist here`);
          nl.setLink(idx, { master });
        }
      } else {
        // No link-local address: it would only emit router solicitations into the tunnel
        // (IPv6 pods are routed by the addresses and routes given, as flannel-v6.1's).
        unlessKind("other", () => nl.setAddrGenModeNone(idx)); // kernels without IPv6
      }
      if (this.pool) {
        // Full-size (64 KiB) super-packets: a pod's TCP builds them for its own veth, and a
        // forwarded GSO packet longer than the TUN's gso_max_size is segmented in software
        // before it reaches us (1.4 KB reads, ~6x slower). Segments are sent from header
        // blocks + payload in place (gather), so nothing needs to fit in one slot.
        unlessKind("other", () => nl.setLink(idx, { gsoMaxSize: 65536 }));
      }
      if (want) nl.addAddr(idx, want.addr, want.len, true);
      nl.setLink(idx, { up: true });
    });
  }

  /**
   * Routes into a kept device (`device.persist`) that our tables do not hold: left by
   * the run before, for peers gone since. While no process served the device they
   * dropped pods' packets at it, which is why it is kept (without it they would leave by
   * the default route, unencapsulated); now they would hide a missing peer the same way.
   * The caller runs this once the starting peers are programmed, so a route still
   * wanted is never missing, not even briefly. Returns how many went.
   */
  sweepKeptRoutes(): number {
    if (!this.reattached) return 0;
    let removed = 0;
    withNetlink(HERE, (nl) => {
      const oif = nl.link(this.device.name).index;
      for (const family of ["ipv4", "ipv6"] as const) {
        for (const r of nl.routes(family)) {
          if (r.oif !== oif || r.protocol !== RTPROT_BOOT) continue;
          const held =
            typeof r.dst === "number"
              ? this.routes.get(r.dst, r.len)
              : this.routes6.get(r.dst, r.len);
          if (held) continue;
          // With its own scope: the kernel deletes only a route whose scope matches.
          unlessKind("not-found", () =>
            nl.delRoute({ dst: r.dst, len: r.len, oif, scope: r.scope }),
          );
          removed++;
        }
      }
    });
    if (removed)
      this.log.info({ removed }, "removed routes a kept device had for peers gone since");
    return removed;
  }

  /** The kernel's route for `prefix` into our device: replaced, or deleted (if present). */
  private kernelRoute(
    prefix: { addr: number | Uint8Array; len: number },
    op: "replace" | "del",
  ): void {
    withNetlink(HERE, (nl) => {
      const r = { dst: prefix.addr, len: prefix.len, oif: nl.link(this.device.name).index };
      if (op === "replace") nl.addRoute(r);
      else unlessKind("not-found", () => nl.delRoute(r));
    });
  }

  /** What the mode adds on this underlay (an IPv6 outer header is 20 bytes more). */
  get overhead(): number {
    return tunnelOverhead(this.cfg.mode, this.peers6 !== undefined);
  }

  /**
   * The number the dataplane names an underlay peer by: the IPv4 address itself, or
   * with an IPv6 underlay its index in the peer table. Throws a TableError (one line)
   * for an address of the other family or no address.
   */
  remoteOf(value: string | number, what = "address"): number {
    if (typeof value === "number") return value;
    const t = value.trim();
    const n = this.peers6 !== undefined ? this.peers6.parse(t) : parseIpv4(t);
    if (n === undefined) {
      const fam = this.peers6 !== undefined ? "IPv6" : "IPv4";
      throw new TableError(
        "EINVAL",
        `bad ${what} "${value}": the underlay is ${fam} (local.address ${this.cfg.local.address}): write an ${fam} address`,
      );
    }
    return n;
  }

  /** Where a peer is reached on our underlay: its PublicIPv6 on an IPv6 one, if it has one. */
  private underlayAddressOf(p: PeerSpec): string {
    return this.peers6 !== undefined && p.publicIpv6 !== undefined ? p.publicIpv6 : p.address;
  }

  /** An underlay peer's number as text (remoteOf's inverse). */
  formatRemote(n: number): string {
    return this.peers6 !== undefined ? this.peers6.format(n) : formatIpv4(n);
  }

  /** The forwarder's settings, plain data (queue workers get a copy). */
  forwarderOptions(): ForwarderOptions {
    const cfg = this.cfg;
    const policy = cfg.policy;
    return {
      mode: cfg.mode === "ipip" ? MODE_IPIP : cfg.mode === "vxlan-l2" ? MODE_VXLAN_L2 : MODE_VXLAN,
      vni: cfg.vni,
      port: cfg.port,
      sportLo: cfg.sourcePortRange[0],
      sportHi: cfg.sourcePortRange[1],
      localIp: this.peers6 !== undefined ? 0 : parseIpv4(cfg.local.address)!,
      vtepMac: this.mac,
      ttl: policy.ttl === "inherit" ? INHERIT : policy.ttl,
      tos: policy.tos === "inherit" ? INHERIT : policy.tos,
      df: { set: DfPolicy.Set, unset: DfPolicy.Clear, inherit: DfPolicy.Copy }[dfPolicy(cfg)],
      proxyArp: cfg.fdb.proxyArp,
      learning: cfg.fdb.learning,
      allowPeers: cfg.allowPeers.map((a) => this.remoteOf(a)),
      batch: cfg.io.batch,
      tunnelMtu: this.tunnelMtu,
      // The limit on the outer packet the forwarder writes, IPv4-sized: over IPv6 the
      // kernel's UDP socket writes a header 20 bytes longer, and fragments at the source
      // itself ("outer": never cut by us, as IPv4 fragments would be wrong there).
      underlayMtu:
        this.peers6 === undefined
          ? this.underlayMtu
          : policy.fragment === "outer"
            ? 65535
            : this.underlayMtu - IPV6_OUTER_EXTRA,
      fragment: policy.fragment === "outer" ? FRAG_OUTER : FRAG_INNER,
    };
  }

  private startForwarding(): void {
    const cfg = this.cfg;
    const fwd = new Forwarder(
      this.forwarderOptions(),
      this.slab,
      this.fdb,
      this.neigh,
      this.routes,
      this.stats,
      // IPv6 underlay: the per-packet path's datagrams leave from the AF_INET6 pool.
      this.underlay?.out6 ?? this.tx,
      { sendBatch: (b, from, count) => this.device.writeBatch(b, from, count) },
      this.fastInfo.state === "on"
        ? {
            pool: this.pool,
            raw: cfg.mode === "ipip" ? this.tx : undefined,
            udpSegment: this.fastInfo.udpSegment,
            usoWrites: this.fastInfo.tunOffloads.includes("uso4"),
            tso6Writes: this.fastInfo.tunOffloads.includes("tso6"),
            rxGso: this.rxGso,
            summer: new NativeSummer(this.slab.buffer),
          }
        : undefined,
    );
    fwd.setTables6(this.routes6, this.neigh6);
    if (this.queueInfo.count > 1) {
      // Queue 0 learns into the real FDB; the workers' copies need the news.
      fwd.onLearn = (_mac, _remote, created) => {
        if (created) this.stats.counters[C.fdb_learned]++;
        this.queues?.syncSoon();
      };
    }
    this.tx.onPmtu = (addr, _port, mtu) => this.lowerPmtu(addr, mtu);
    const fatal = (err: Error) => this.fatal(err);
    this.device.startReading(new Batch(cfg.io.batch), fwd.fromDevice, fatal);
    this.rx.startReading(new Batch(cfg.io.batch), fwd.fromUnderlay, fatal);
    this.underlay?.rx6?.startReading(new Batch(cfg.io.batch), fwd.fromUnderlay, fatal);
    // Ageing is one sweep a second, not a timer per entry.
    this.timer = setInterval(() => {
      if (this.fdb.expire() > 0) this.tablesChanged();
      this.neigh.expire();
    }, 1000);
    this.timer.unref();
  }

  /**
   * vxlan-l2 with queues: a worker learned `mac` behind `remote` (new or moved), or
   * (`seen`) its frames refreshed it: learn it here, where ageing runs and `fdb show`
   * looks (a report of frames seen refreshes, never moves: Fdb.refresh).
   */
  learnFromQueue(mac: number, remote: number, seen: boolean): void {
    const r = seen ? this.fdb.refresh(mac, remote) : this.fdb.learn(mac, remote);
    if (r === Learn.Created) this.stats.counters[C.fdb_learned]++;
    if (r === Learn.Created || r === Learn.Moved) this.queues?.syncSoon();
  }

  /** A queue's device or socket broke: stop everything (exit code 1). */
  fatal(err: Error): void {
    if (this.stopping) return;
    this.log.error({ err: err.message }, "I/O failed; shutting down");
    void this.stop().then(() => {
      process.exitCode = 1;
    });
  }

  /** The tables changed on this thread: queue workers get the new copy. */
  tablesChanged(): void {
    this.queues?.syncTables();
  }

  /**
   * EMSGSIZE from the underlay: the path to `remote` carries at most `mtu` bytes. Lower
   * the inner MTU of every route that leads there, so the next too-big packet gets an
   * ICMP "fragmentation needed" (DF) or is fragmented (no DF) instead of being lost.
   */
  lowerPmtu(remote: number, mtu: number): void {
    if (mtu <= 0) return;
    const inner = mtu - this.overhead;
    let changed = false;
    for (const r of this.routes.list()) {
      let to = r.remote;
      if (this.cfg.mode === "vxlan") {
        const mac = this.neigh.resolve(r.gateway);
        to = mac < 0 ? 0 : (this.fdb.lookup(mac)?.remote ?? 0);
      }
      if (to === remote && (r.mtu === 0 || inner < r.mtu)) {
        this.routes.setMtu(r.prefix, r.len, inner);
        this.stats.counters[C.pmtu_updates]++;
        this.log.info({ remote: this.formatRemote(remote), mtu }, "path MTU lowered");
        changed = true;
      }
    }
    // IPv6 routes too; below the IPv6 minimum (1280) the route keeps its MTU and the
    // outer IPv4 packet (DF clear for IPv6 inside) is fragmented instead.
    for (const r of inner >= 1280 ? this.routes6.list() : []) {
      let to = r.remote;
      if (this.cfg.mode === "vxlan") {
        const mac = r.gateway === undefined ? -1 : this.neigh6.resolve(r.gateway);
        to = mac < 0 ? 0 : (this.fdb.lookup(mac)?.remote ?? 0);
      }
      if (to === remote && (r.mtu === 0 || inner < r.mtu)) {
        this.routes6.setMtu(r.prefix, r.len, inner);
        this.stats.counters[C.pmtu_updates]++;
        changed = true;
      }
    }
    if (changed) this.tablesChanged();
  }

  // ---------------------------------------------------------------- routes and peers

  /** A route in our table, and the kernel's route for its prefix into our device. */
  async addRoute(prefix: string, spec: RouteSpec): Promise<void> {
    // IPv6 or IPv4, as `ip route` tells the family by the address.
    const v6 = prefix.includes(":");
    const p = v6 ? parsePrefix6(prefix) : parsePrefix(prefix);
    if (v6) {
      const gateway = spec.gateway === undefined ? undefined : String(spec.gateway);
      this.routes6.add(p.addr as Uint8Array, p.len, { ...spec, gateway });
    } else {
      this.routes.add(p.addr as number, p.len, spec);
    }
    this.tablesChanged();
    this.kernelRoute(p, "replace");
  }

  async delRoute(prefix: string): Promise<void> {
    const v6 = prefix.includes(":");
    const p = v6 ? parsePrefix6(prefix) : parsePrefix(prefix);
    if (v6) this.routes6.del(p.addr as Uint8Array, p.len);
    else this.routes.del(p.addr as number, p.len);
    this.tablesChanged();
    try {
      this.kernelRoute(p, "del");
    } catch {
      // our device may be gone already (shutdown)
    }
  }

  /**
   * What flanneld does for a remote node, in one step: in vxlan mode a route for its
   * subnet via its VTEP address (onlink), a permanent neighbour (VTEP address -> MAC)
   * and an FDB entry (MAC -> node address); in ipip mode a route whose outer destination
   * is the node; in vxlan-l2 mode an all-zeros FDB entry so BUM traffic reaches it.
   * The kernel's route for the subnet points into our TUN.
   */
  async addPeer(p: PeerSpec): Promise<void> {
    const node = this.remoteOf(this.underlayAddressOf(p), "peer address");
    const mode = this.cfg.mode;
    if (mode === "vxlan-l2") {
      this.fdb.append(0, node);
      this.tablesChanged();
      this.peers.set(p.address, p);
      return;
    }
    if (!p.subnet) throw new UserError(`peer ${p.address}: a subnet is required in ${mode} mode`);
    const net = parseCidr(p.subnet);
    if (net === undefined)
      throw new UserError(`peer ${p.address}: subnet "${p.subnet}" is not a prefix`);
    if (mode === "vxlan") {
      const mac = p.vtepMac ? parseMac(p.vtepMac) : undefined;
      if (mac === undefined) {
        throw new UserError(`peer ${p.address}: vtep-mac is required in vxlan mode`);
      }
      this.neigh.replace(net.addr, mac);
      this.fdb.replace(mac, node);
      this.routes.replace(net.addr, net.len, { gateway: net.addr, onlink: true });
    } else {
      this.routes.replace(net.addr, net.len, { remote: node });
    }
    this.tablesChanged();
    this.kernelRoute(net, "replace");
    this.peers.set(p.address, p);
  }

  async delPeer(address: string): Promise<void> {
    const p = this.peers.get(address);
    if (!p) throw new UserError(`no peer ${address}; see 'vxtun peer show'`);
    const node = this.remoteOf(this.underlayAddressOf(p), "peer address");
    if (this.cfg.mode === "vxlan-l2") {
      this.fdb.del(0, node);
    } else if (p.subnet) {
      const net = parseCidr(p.subnet)!;
      this.routes.del(net.addr, net.len);
      if (this.cfg.mode === "vxlan" && p.vtepMac) {
        this.neigh.del(net.addr);
        this.fdb.del(parseMac(p.vtepMac)!);
      }
      try {
        this.kernelRoute(net, "del");
      } catch {
        // our device may be gone already (shutdown)
      }
    }
    this.tablesChanged();
    this.peers.delete(address);
  }

  /** What the instance runs with, for the `info` verb (labs and the CNI plugin ask it). */
  info() {
    return {
      name: this.cfg.name,
      mode: this.cfg.mode,
      device: this.device.name,
      mtu: this.mtu,
      underlayMtu: this.underlayMtu,
      tunnelMtu: this.tunnelMtu,
      vtepMac: formatMac(this.mac),
      local: this.cfg.local.address,
      underlay: this.peers6 !== undefined ? "ipv6" : "ipv4",
      vni: this.cfg.vni,
      port: this.cfg.port,
      offload: this.fastInfo,
      queues: this.queueInfo,
    };
  }

  /** Counters plus the I/O layer's own (EAGAIN, ENOBUFS, pool exhaustion...). */
  statsSnapshot(): ReturnType<Stats["snapshot"]> & {
    offload: FastPathInfo;
    queues: { count: number; why: string; rx: number[] };
  } {
    const snap = {
      ...this.stats.snapshot(),
      offload: this.fastInfo,
      queues: { ...this.queueInfo, rx: [] as number[] },
    };
    const io = new Float64Array(IO_ERROR_FIELDS.length);
    if (this.underlay) sumIoErrors(this.underlay, this.device, io);
    let exhausted = this.slab.poolExhausted;
    // Per queue: packets read from its TUN queue plus datagrams from its socket.
    const rxOf = (st: Stats) => st.counters[C.tun_rx_packets] + st.counters[C.underlay_rx_packets];
    snap.queues.rx.push(rxOf(this.stats));
    for (let i = 0; i < (this.queues?.size ?? 0); i++) {
      const st = this.queues!.statsOf(i);
      Stats.addInto(snap, st);
      snap.queues.rx.push(rxOf(st));
      const w = this.queues!.ioOf(i);
      for (let k = 0; k < io.length; k++) io[k] += w[k];
      exhausted += w[io.length];
    }
    const [eagain, enobufs, econnrefused, emsgsize, tunWrite] = io;
    snap.counters.send_eagain = eagain;
    snap.counters.send_enobufs = enobufs;
    snap.counters.send_econnrefused = econnrefused;
    snap.counters.send_emsgsize = emsgsize;
    snap.counters.tun_write_errors += tunWrite;
    snap.drops.pool_exhausted += exhausted;
    // Outer fragments are reassembled by the kernel before our socket sees them; its
    // counters (this namespace's) show how many.
    const reasm = kernelReassembly();
    snap.counters.kernel_ip_reasm_reqds = reasm.reqds;
    snap.counters.kernel_ip_reasm_oks = reasm.oks;
    return snap;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.metrics?.close();
    await this.queues?.stop();
    this.rx.close();
    this.underlay?.rx6?.close();
    this.tx.close();
    this.pool?.close();
    this.device.closeDevice({ keep: this.cfg.device.persist ?? false });
  }
}

/** Is there a device named `name` already (one an earlier run kept)? */
function keptDevice(name: string): boolean {
  if (name.includes("%")) return false;
  return withNetlink(HERE, (nl) => nl.index(name) !== undefined);
}

/** MTU of the underlay interface: the configured one, else the one holding local.address. */
export async function findUnderlayMtu(cfg: Config): Promise<number> {
  return withNetlink(HERE, (nl) => {
    if (cfg.local.interface) {
      const link = unlessKind("not-found", () => nl.link(cfg.local.interface as string));
      if (!link) {
        throw new UserError(
          `underlay interface ${cfg.local.interface} not found in this network namespace (local.interface)`,
        );
      }
      return link.mtu;
    }
    const local = parseIpv4(cfg.local.address);
    const owner = nl.addrs().find((a) => a.addr === local);
    if (!owner) {
      throw new UserError(
        `local.address ${cfg.local.address} is not configured on any interface here: add it, or fix local.address`,
      );
    }
    return nl.link(owner.index).mtu;
  });
}

/** The fast path's report before (or without) it: `state` says why. */
function fastPathOff(state: string): FastPathInfo {
  return {
    state,
    probe: undefined,
    tunOffloads: [],
    udpSegment: false,
    udpGro: false,
    sourcePorts: [],
    csumLoop: native.csumLoop,
  };
}

/**
 * Whether the offload fast path runs, from the config (`io.offload`, overridable with
 * VXTUN_IO_OFFLOAD=off|auto for benchmarks) and a probe of this kernel, in every mode
 * (vxlan and ipip on the TUN, vxlan-l2 on the TAP); needs CSUM|TSO4 on the device. In
 * ipip mode segments go out as one sendmmsg batch from the raw socket (no UDP_SEGMENT
 * there) and arrive one by one (no UDP_GRO), to be coalesced all the same. UDP_SEGMENT
 * and UDP_GRO are used when accepted; without UDP_SEGMENT a super-packet's segments go
 * out as one sendmmsg batch instead.
 */
function decideFastPath(cfg: Config): { on: boolean; tunOffloads: number; info: FastPathInfo } {
  const off = (why: string, probe?: FastPathInfo["probe"]) => ({
    on: false,
    tunOffloads: 0,
    info: { ...fastPathOff(`off (${why})`), probe },
  });
  const setting = process.env.VXTUN_IO_OFFLOAD || cfg.io.offload;
  if (setting === "off") return off("config");
  let probe: ReturnType<typeof probeOffloads>;
  try {
    probe = probeOffloads();
  } catch (e) {
    return off(`probe failed: ${(e as Error).message}`);
  }
  if (!probe.csumTso4) return off("device refuses CSUM|TSO4", probe);
  const info = fastPathOff("on");
  info.probe = probe;
  info.tunOffloads = ["csum", "tso4"];
  let flags = TUN_F.CSUM | TUN_F.TSO4;
  // TSO6: the segmenter cuts IPv6 like IPv4, a bridge's frames (vxlan-l2) and the
  // routed IPv6 pods of the L3 modes alike.
  if (probe.csumTso6) {
    flags |= TUN_F.TSO6;
    info.tunOffloads.push("tso6");
  }
  // USO: an application's UDP_SEGMENT runs reach us whole (segmented in usoSegment)
  // instead of being cut in software before the device. USO4 and USO6 come as a pair:
  // an IPv6 run on the TUN is routed like a single IPv6 packet, on the TAP it is cut
  // like an IPv4 one; in ipip mode the datagrams leave as one raw sendmmsg batch.
  // (`all`: the kernel took CSUM with TSO4, TSO6, USO4 and USO6 together, so these are
  // safe to ask.)
  if (probe.all) {
    flags |= TUN_F.USO4 | TUN_F.USO6;
    info.tunOffloads.push("uso4", "uso6");
  }
  // ipip sends and receives on raw sockets: neither applies (stats shows "no").
  info.udpSegment = cfg.mode !== "ipip" && probe.udpSegment;
  info.udpGro = cfg.mode !== "ipip" && probe.udpGro;
  return { on: true, tunOffloads: flags, info };
}

/**
 * Forwarding queues (`io.queues`): `auto` is one per core (at most 8), in every mode
 * (ipip: each queue's raw socket filters its share of the flows, steer.ts; vxlan-l2:
 * workers send what they learn to the main thread, queues.ts).
 */
export function decideQueues(cfg: Config, v6 = false): { count: number; why: string } {
  const q = cfg.io.queues;
  // The IPv6 peer table lives on the main thread (workers would need a shared one).
  if (v6) return { count: 1, why: "IPv6 underlay: one queue" };
  if (q === "auto") {
    const n = Math.min(availableParallelism(), 8);
    return { count: n, why: `auto: ${availableParallelism()} cores` };
  }
  return { count: q, why: "io.queues" };
}

/** ReasmReqds / ReasmOKs from /proc/net/snmp (this network namespace). */
function kernelReassembly(): { reqds: number; oks: number } {
  try {
    const lines = readFileSync("/proc/net/snmp", "utf8")
      .split("\n")
      .filter((l) => l.startsWith("Ip:"));
    const keys = lines[0].split(/\s+/);
    const vals = lines[1].split(/\s+/).map(Number);
    return {
      reqds: vals[keys.indexOf("ReasmReqds")] ?? 0,
      oks: vals[keys.indexOf("ReasmOKs")] ?? 0,
    };
  } catch {
    return { reqds: 0, oks: 0 };
  }
}
