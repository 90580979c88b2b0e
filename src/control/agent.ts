// `vxtun agent`: one process per node running the control plane and the dataplane.
// Order matters: store config check → subnet claim → node bridge → dataplane (its TUN
// gets the subnet's /32, or in vxlan-l2 its TAP joins the bridge) → control socket →
// node state file → CNI server → peer sync and lease renewal. A restart (the state
// directory remembers the subnet and the peers) starts the node side first and
// forwards at once, then opens the store and confirms. Stopping never deletes the
// lease, so a restarted agent keeps its subnet.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { dataplaneHandlers } from "../api/handlers.js";
import { ControlServer } from "../api/server.js";
import { startCniServer } from "../cni/server.js";
import {
  ConfigError,
  deviceMtu,
  instancePaths,
  isIpv6Underlay,
  vtepMac,
} from "../dataplane/config.js";
import { Dataplane, findUnderlayMtu } from "../dataplane/dataplane.js";
import { formatIpv4, formatMac, parseCidr } from "../encap/addr.js";
import { parseIpv6 } from "../encap/addr6.js";
import { ensureBridge, withNetlink } from "../system/netlink.js";
import { applyMasquerade, removeMasquerade } from "../system/nft.js";
import { type AgentConfig, agentPaths } from "./config.js";
import { FileStore } from "./file-store.js";
import {
  CorruptValueError,
  configMismatch,
  gatewayOf,
  type Ipv6Network,
  type LeasePeer,
  type LeaseSubnets,
  leaseValueFor,
  networkConfigFor,
  subnetsOf,
} from "./flannel.js";
import { firstHost6, formatNet6, parseNet6 } from "./ip6net.js";
import {
  AllocationError,
  claimSubnet,
  readRemembered,
  renewDelayMs,
  writeRemembered,
} from "./lease.js";
import type * as AgentMetrics from "./metrics.js";
import { writeNodeState } from "./node-state.js";
import { readPeerCache, writePeerCache } from "./peer-cache.js";
import { leaseTarget, vtep6Of } from "./peer-target.js";
import { PeerSync, type PeerTarget } from "./peers.js";
import { LeaseLostError, LeaseTakenError, type Store } from "./store.js";

/** The configured store; etcd's client (grpc, ~0.3 s to load) only when it is etcd. */
export async function openStore(cfg: AgentConfig, log: Logger): Promise<Store> {
  const warn = (msg: string) => log.warn(msg);
  if (cfg.store.type === "file") return new FileStore({ dir: cfg.store.dir, warn });
  const { EtcdStore, etcdSecurity } = await import("./etcd-store.js");
  return new EtcdStore({
    endpoints: cfg.store.endpoints,
    prefix: cfg.store.prefix,
    // Certificates and password are read now: an unreadable file stops the agent
    // before it touches the store (and on a first start, the network or nftables).
    ...etcdSecurity(cfg.store),
    warn,
  });
}

/** Retry store calls at start-up (a node may boot before its etcd); config errors are final. */
async function untilStoreAnswers<T>(
  what: string,
  log: Logger,
  fn: () => Promise<T>,
  /** Aborted when the agent stops: no more retries. */
  signal?: AbortSignal,
): Promise<T> {
  let delay = 250;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      const final = [ConfigError, LeaseTakenError, CorruptValueError, AllocationError];
      if (final.some((k) => e instanceof k) || signal?.aborted) throw e;
      log.warn(
        { err: (e as Error).message, retryMs: delay },
        `${what}: store unreachable, retrying`,
      );
      await sleep(delay, undefined, { signal });
      delay = Math.min(delay * 2, 5000);
    }
  }
}

/** An IPv6 address on one of our links, usable at once (no duplicate address detection). */
function addAddress6(dev: string, addr: string, len: number): void {
  withNetlink("", (nl) => nl.addAddr6(nl.link(dev).index, parseIpv6(addr)!, len));
}

export class Agent {
  private renewTimer: NodeJS.Timeout | undefined;
  private expiresAt = 0;
  private stopping = false;
  private cni: { close(): Promise<void> } | undefined;
  private control: ControlServer | undefined;
  private masq = false;
  private readonly aborted = new AbortController();
  /**
   * The metrics module (prom-client), loaded once forwarding runs or the store opens,
   * whichever comes first: on a restart it is not worth delaying the first packet for.
   */
  private metricsModule: typeof AgentMetrics | undefined;
  /** Opened before the first claim, or on a restart once forwarding runs. */
  store: Store | undefined;
  dp: Dataplane | undefined;
  sync: PeerSync | undefined;
  private target: PeerTarget | undefined;
  subnet = "";
  /** Dual stack: our IPv6 subnet. */
  subnet6: string | undefined;
  /** Resolves when the agent stops by itself (lease lost) instead of by stop(). */
  readonly done: Promise<void>;
  private finish!: () => void;

  private constructor(
    readonly cfg: AgentConfig,
    readonly log: Logger,
  ) {
    this.done = new Promise((r) => {
      this.finish = r;
    });
  }

  static async start(cfg: AgentConfig, log: Logger): Promise<Agent> {
    const agent = new Agent(cfg, log);
    try {
      await agent.init();
    } catch (e) {
      await agent.stop();
      throw e;
    }
    return agent;
  }

  /** flannel's IPv6Network and IPv6SubnetLen, canonical; undefined on a single stack. */
  private get v6(): Ipv6Network | undefined {
    const n = this.cfg.ipv6Network ? parseNet6(this.cfg.ipv6Network) : undefined;
    return n && { network: formatNet6(n), subnetLen: this.cfg.ipv6SubnetLen };
  }

  /** Is the dataplane's underlay IPv6 (local.address or local.family)? */
  private get underlay6(): boolean {
    return isIpv6Underlay(this.cfg.local.address);
  }

  /**
   * What the lease publishes. flannel's PublicIP is always IPv4 (leases are owned by it),
   * so over an IPv6 underlay it is the interface's IPv4 address (local.address4) and the
   * address peers send to is PublicIPv6: publicIpv6, else the IPv6 underlay address.
   */
  private get identity() {
    const c = this.cfg;
    const v6u = this.underlay6;
    if (v6u && !c.local.address4) {
      throw new ConfigError(
        `the IPv6 underlay ${c.local.interface} has no IPv4 address for the lease's PublicIP (flannel's leases are owned by one): add an IPv4 address to ${c.local.interface}`,
      );
    }
    return {
      mode: c.mode,
      publicIp: v6u ? c.local.address4! : c.local.publicAddress,
      vni: c.vni,
      port: c.port,
      vtepMac: formatMac(vtepMac(c)),
      ipv6: this.v6 !== undefined,
      publicIpv6: c.publicIpv6 ?? (v6u ? c.local.publicAddress : undefined),
    };
  }

  private get lease(): LeaseSubnets {
    return subnetsOf({ subnet: this.subnet, subnet6: this.subnet6 });
  }

  private async init(): Promise<void> {
    const { cfg, log } = this;
    const net = parseCidr(cfg.network)!;
    const network = `${formatIpv4(net.addr)}/${net.len}`;
    const state = instancePaths(cfg).state;
    const rememberedFile = join(state, "lease.json");
    const peersFile = join(state, "peers.json");
    const previous = readRemembered(rememberedFile);
    const v6 = this.v6;
    const sameNetworks =
      previous?.network === network && previous.network6 === (v6 ? v6.network : undefined);
    if (
      previous &&
      sameNetworks &&
      previous.publicIp === this.identity.publicIp &&
      (!v6 || previous.subnet6)
    ) {
      // A restart (supervisor, crash, upgrade): forward at once on the subnets and peers
      // the last run left in the state directory, then confirm them with the store,
      // which may be slow or down right now. The store stays the judge: PeerSync
      // reconciles the cached peers, and a subnet the store gives to another node stops
      // the agent as a lost lease does.
      const peers = readPeerCache(peersFile, (m) => log.warn(m));
      await this.startLocal(subnetsOf(previous), peers, network);
      this.startSync(await this.openStore(), peers, peersFile);
      // In the background: a failure stops the agent (fail), so nothing awaits it.
      void this.claim(network, subnetsOf(previous), rememberedFile).then(
        () => this.scheduleRenew(renewDelayMs(cfg.leaseTtlSeconds)),
        (e: Error) => this.fail(e, "the store does not confirm our subnet"),
      );
      return;
    }
    const store = await this.openStore();
    await this.claim(
      network,
      previous?.network === network ? subnetsOf(previous) : undefined,
      rememberedFile,
    );
    if (previous && previous.subnet !== this.subnet) {
      log.warn({ was: previous.subnet, now: this.subnet }, "previous subnet was taken; moved");
    }
    await this.startLocal(this.lease, [], network);
    this.startSync(store, [], peersFile);
    this.scheduleRenew(renewDelayMs(cfg.leaseTtlSeconds));
  }

  /** Check the store's network config and claim subnets (`previous` first), retrying while it is away. */
  private async claim(
    network: string,
    previous: LeaseSubnets | undefined,
    rememberedFile: string,
  ): Promise<void> {
    const { cfg, log } = this;
    const store = this.store!;
    const stopped = this.aborted.signal;
    const v6 = this.v6;
    const stored = await untilStoreAnswers(
      "network config",
      log,
      () => store.putConfigIfAbsent(networkConfigFor(network, cfg.subnetLen, this.identity, v6)),
      stopped,
    );
    const mismatch = configMismatch(stored, network, cfg.subnetLen, this.identity, v6);
    if (mismatch) {
      throw new ConfigError(
        `the store's network config (${store.kind}) differs from ours: ${mismatch}`,
      );
    }
    const claim = await untilStoreAnswers(
      "subnet claim",
      log,
      () =>
        claimSubnet(store, {
          network,
          subnetLen: cfg.subnetLen,
          v6: v6 && { network: parseNet6(v6.network)!, subnetLen: v6.subnetLen },
          value: leaseValueFor(this.identity),
          ttlSeconds: cfg.leaseTtlSeconds,
          previous,
          log,
        }),
      stopped,
    );
    const remember = (l: LeaseSubnets) =>
      writeRemembered(rememberedFile, {
        ...subnetsOf(l),
        network,
        publicIp: this.identity.publicIp,
        ...(v6 ? { network6: v6.network } : {}),
      });
    if (
      this.subnet &&
      (claim.subnet !== this.subnet || (this.subnet6 && claim.subnet6 !== this.subnet6))
    ) {
      // Forwarding already runs on the remembered subnets: new ones need a fresh start.
      remember(claim);
      throw new LeaseLostError(this.subnet, "another node");
    }
    this.subnet = claim.subnet;
    this.subnet6 = claim.subnet6;
    this.expiresAt = claim.expiresAt;
    remember(claim);
  }

  /** A failure after start-up that the agent cannot carry on from: stop, exit 1. */
  private async fail(e: Error, what: string): Promise<void> {
    if (this.stopping) return;
    this.log.error({ err: e.message }, `${what}; stopping`);
    process.exitCode = 1;
    await this.stop();
    this.finish();
  }

  /**
   * Everything on this node for `lease`: bridge, dataplane (with `peers` programmed
   * before it forwards), control socket, subnet.env, CNI server, masquerade.
   */
  private async startLocal(lease: LeaseSubnets, peers: LeasePeer[], network: string) {
    const { cfg, log } = this;
    const { subnet, subnet6 } = lease;
    this.subnet = subnet;
    this.subnet6 = subnet6;
    const v6 = this.v6;
    const net = parseCidr(cfg.network)!;
    const dpPaths = instancePaths(cfg);
    const { stateFile, cniSocket } = agentPaths(cfg);
    const l2 = cfg.mode === "vxlan-l2";
    const mtu = deviceMtu(cfg, await findUnderlayMtu(cfg));
    const gw = gatewayOf(subnet);
    const cidr = `${gw}/${l2 ? net.len : cfg.subnetLen}`;
    await ensureBridge("", cfg.bridge, { cidr, mtu, network: net });
    const gw6 = subnet6 && firstHost6(subnet6);
    if (gw6 && v6) {
      // The IPv6 gateway beside the IPv4 one (in vxlan-l2 with the whole network's length,
      // as for IPv4: every pod is on one segment).
      const len6 = l2 ? parseNet6(v6.network)!.len : v6.subnetLen;
      addAddress6(cfg.bridge, gw6, len6);
    }

    this.dp = await Dataplane.start(
      {
        ...cfg,
        device: {
          ...cfg.device,
          // flannel.1 style: the subnet's network address /32 on the L3 device.
          address: l2 ? undefined : `${subnet.split("/")[0]}/32`,
          bridge: l2 ? cfg.bridge : cfg.device.bridge,
          // Kept across restarts, as flanneld keeps flannel.1: while no agent runs, pods'
          // packets for other nodes are dropped at the device instead of leaving by the
          // default route unencapsulated (and the routes are there when it comes back).
          persist: cfg.device.persist ?? true,
        },
        // The IPv4 half of cached peers goes in before the first packet is forwarded.
        peers: peers.map(({ address, subnet, vtepMac, publicIpv6 }) => ({
          address,
          subnet,
          vtepMac,
          ...(publicIpv6 ? { publicIpv6 } : {}),
        })),
      },
      log,
    );
    // flannel-v6.1 style: the IPv6 subnet's network address /128 on the L3 device.
    if (subnet6 && !l2) addAddress6(this.dp.device.name, vtep6Of(subnet6), 128);
    const m = await this.loadMetrics();
    this.target = m.peerTargetWithMetrics(leaseTarget(this.dp, cfg.mode, this.underlay6));
    // Cached dual-stack peers: their IPv6 half too (the target remembers it for removal).
    for (const p of peers) if (p.subnet6) await this.target.addPeer(p);
    this.dp.sweepKeptRoutes();
    // The dataplane's verbs and the agent's own report, on the dataplane's socket.
    this.control = new ControlServer(dpPaths.socket, {
      ...dataplaneHandlers(this.dp),
      agent: () => this.report(),
    });
    await this.control.listen();

    writeNodeState(stateFile, {
      network,
      subnet: `${gw}/${cfg.subnetLen}`,
      mtu: this.dp.mtu,
      ...(gw6 && v6 ? { ipv6Network: v6.network, ipv6Subnet: `${gw6}/${v6.subnetLen}` } : {}),
      ipMasq: cfg.ipMasq,
      mode: cfg.mode,
      bridge: cfg.bridge,
      node: cfg.name,
      dataplaneSocket: dpPaths.socket,
      cniSocket,
    });
    // The CNI plugin's long-lived half: pods are wired by this process, next to the state.
    this.cni = await startCniServer({ socket: cniSocket, stateFile, log });

    // Replaced atomically at every start; with ipMasq off a table left by an earlier
    // run is removed, so subnet.env's FLANNEL_IPMASQ is the truth either way.
    if (cfg.ipMasq) {
      this.masq = true;
      const masq6 = v6 && subnet6 ? { network: v6.network, subnet: subnet6 } : undefined;
      await applyMasquerade(cfg.name, network, subnet, "", masq6);
    } else {
      // Without nft there is no table to remove: fine when masquerade is off.
      await removeMasquerade(cfg.name).catch((e) =>
        log.debug({ err: (e as Error).message }, "no masquerade table removed"),
      );
    }

    log.info(
      { subnet, subnet6, gateway: gw, stateFile, cachedPeers: peers.length },
      "vxtun agent running",
    );
  }

  private async openStore(): Promise<Store> {
    const m = await this.loadMetrics();
    this.store = m.storeWithMetrics(await openStore(this.cfg, this.log));
    return this.store;
  }

  private async loadMetrics(): Promise<typeof AgentMetrics> {
    this.metricsModule ??= await import("./metrics.js");
    return this.metricsModule;
  }

  /** Loaded by startLocal and openStore, which every later use follows. */
  private get metrics(): typeof AgentMetrics {
    if (!this.metricsModule) throw new Error("agent metrics used before they were loaded");
    return this.metricsModule;
  }

  /** Follow the other nodes' leases, from the peers already programmed. */
  private startSync(store: Store, peers: LeasePeer[], peersFile: string): void {
    this.sync = new PeerSync(store, this.target!, {
      mode: this.cfg.mode,
      ownSubnet: this.subnet,
      ipv6: this.v6 !== undefined,
      underlay6: this.underlay6,
      log: this.log,
      onReconcile: this.metrics.reconciled,
      onIgnore: this.metrics.leaseIgnored,
      initial: peers,
      onChange: (p) => writePeerCache(peersFile, p),
    });
    this.metrics.watchAgent({ expiresAt: () => this.expiresAt, store: () => store.health() });
    this.sync.start();
  }

  private scheduleRenew(ms: number): void {
    if (this.stopping) return;
    this.renewTimer = setTimeout(() => void this.renew(), ms);
  }

  /** Renew on schedule; on failure retry soon (1 s, or sooner for short TTLs). */
  private async renew(): Promise<void> {
    const ttl = this.cfg.leaseTtlSeconds;
    try {
      const r = await this.store!.renewLease(this.lease, leaseValueFor(this.identity), ttl);
      this.expiresAt = r.expiresAt;
      this.metrics.leaseRenewed(true);
      this.scheduleRenew(renewDelayMs(ttl));
    } catch (e) {
      if (e instanceof LeaseLostError) {
        // Another node owns our subnet now: two nodes routing one subnet is worse than
        // none. Stop; a restart allocates a fresh subnet.
        this.log.error(
          { subnet: this.subnet, holder: e.holder },
          "lease lost to another node; stopping",
        );
        process.exitCode = 1;
        await this.stop();
        this.finish();
        return;
      }
      this.metrics.leaseRenewed(false);
      this.log.warn({ err: (e as Error).message }, "lease renewal failed; retrying");
      this.scheduleRenew(Math.min(1000, (ttl * 1000) / 6));
    }
  }

  report() {
    const health = this.store?.health() ?? { ok: false, error: "not opened yet" };
    return {
      node: this.cfg.name,
      mode: this.cfg.mode,
      network: this.cfg.network,
      subnet: this.subnet,
      gateway: this.subnet ? gatewayOf(this.subnet) : undefined,
      ...(this.subnet6
        ? {
            ipv6Network: this.v6?.network,
            subnet6: this.subnet6,
            gateway6: firstHost6(this.subnet6),
          }
        : {}),
      publicIp: this.identity.publicIp,
      ...(this.identity.publicIpv6 ? { publicIpv6: this.identity.publicIpv6 } : {}),
      local: { address: this.cfg.local.address, interface: this.cfg.local.interface },
      ipMasq: this.cfg.ipMasq,
      vtepMac: this.identity.vtepMac,
      lease: {
        ttlSeconds: this.cfg.leaseTtlSeconds,
        expiresAt: new Date(this.expiresAt).toISOString(),
      },
      store: { kind: this.cfg.store.type, ...health, ...this.sync?.getStatus() },
      peers: [...(this.sync?.peers.entries() ?? [])].map(([subnet, p]) => ({
        ...p,
        subnet,
        since: this.metrics.peerSince(p.address),
      })),
    };
  }

  /** Stop forwarding and leave the store; the lease stays (a restart keeps the subnet). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.aborted.abort();
    await this.sync?.stop();
    await this.cni?.close().catch(() => undefined);
    await this.control?.close();
    if (this.masq) {
      await removeMasquerade(this.cfg.name).catch((e) =>
        this.log.warn({ err: (e as Error).message }, "removing the masquerade table failed"),
      );
    }
    await this.store?.close();
    // Last: pods keep forwarding until the process is about to exit (a supervisor's
    // restart costs them this much less).
    await this.dp?.stop();
  }
}
