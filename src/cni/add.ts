// ADD: IPAM and the veth pair (its pod end created straight in the pod's namespace, the
// host end on the node bridge, or routed /32 in ptp mode) at the same time, then the pod's
// address and routes, all over rtnetlink (src/system/netlink.ts). Any failure undoes the
// links and releases the lease.
import { existsSync } from "node:fs";
import { formatIpv4, parseIpv4 } from "../encap/addr.js";
import { maskIpv6, parseCidr6, parseIpv6 } from "../encap/addr6.js";
import { podGsoMaxSize } from "../io/gso-batch.js";
import { IpError } from "../system/iproute.js";
import {
  ensureBridgeNl,
  type LinkAttrs,
  Netlink,
  RT_SCOPE_LINK,
  routeDst,
  withNsFd,
} from "../system/netlink.js";
import type { NetConf } from "./config.js";
import type { CniEnv } from "./env.js";
import { CniCode, CniError } from "./errors.js";
import { ipamAdd, ipamDel } from "./ipam.js";
import {
  attachmentAlias,
  deleteLink,
  HERE,
  hostVethName,
  inPodNs,
  step,
  vethMacs,
} from "./link.js";
import type { Logger } from "./log.js";
import { type NodeState, readNodeState } from "./node-state.js";
import { type CniResult, parseResult } from "./version.js";

export function requireNetns(netns: string): void {
  if (!existsSync(netns)) {
    throw new CniError(
      CniCode.unknownContainer,
      `network namespace ${netns} does not exist`,
      "CNI_NETNS must be the path of the pod's network namespace (e.g. /run/netns/NAME or /proc/PID/ns/net)",
    );
  }
}

export async function cmdAdd(env: CniEnv, conf: NetConf, log: Logger): Promise<CniResult> {
  requireNetns(env.netns);
  const state = readNodeState(conf.stateFile);
  if (conf.mode === "ptp" && state.mode === "vxlan-l2") {
    throw new CniError(
      CniCode.invalidConfig,
      `"mode": "ptp" does not fit the node's vxlan-l2 overlay`,
      "an L2 overlay needs the pods on the node bridge: use the default bridge mode",
    );
  }
  const ipamP = ipamAdd(env, conf, state);
  try {
    return await wire(env, conf, state, ipamP, log);
  } catch (e) {
    log.warn({ err: (e as Error).message, containerId: env.containerId }, "ADD failed, undoing");
    await deleteLink(hostVethName(env.containerId, env.ifname)).catch(() => {});
    await ipamDel(env, conf, state).catch((d: Error) =>
      log.error({ err: d.message }, "IPAM DEL after a failed ADD failed too"),
    );
    throw e;
  }
}

async function wire(
  env: CniEnv,
  conf: NetConf,
  state: NodeState,
  ipamP: Promise<CniResult>,
  log: Logger,
): Promise<CniResult> {
  const mtu = conf.mtu ?? state.mtu;
  const bridge = conf.bridge ?? state.bridge;
  const host = hostVethName(env.containerId, env.ifname);
  const macs = vethMacs(env.containerId, env.ifname);
  const ptp = conf.mode === "ptp";
  // The whole overlay is one L2 segment in vxlan-l2; in L3 modes the node subnet is.
  const prefixLen = ptp ? 32 : state.mode === "vxlan-l2" ? state.network.len : state.subnet.len;
  // VXLAN modes: the pod end's gso_max_size keeps its TCP super-packets to what one
  // UDP_SEGMENT send carries (a 64 KiB one leaves as 44 + 1 segments at MTU 1450: two
  // sends, two datagrams to receive; pod to pod TCP measured 2.9-3.1 Gbit/s that way,
  // 3.6-3.9 with the limit). The pod end only: the host end carries our coalesced
  // writes to the pod, which must not be cut again. Not on the TUN either: a forwarded
  // GSO packet longer than the TUN's gso_max_size is segmented in software before us.
  const gsoMaxSize = podGsoMaxSize(state.mode, mtu);

  // The links while IPAM runs (it may wait for host-local's lock or process): both settle
  // before any cleanup. Bridge mode needs no address on the host side.
  const here = new Netlink(HERE);
  try {
    const early = Promise.resolve().then(() =>
      step(`creating and attaching veth ${host}`, () => {
        const master = ptp ? undefined : bridgeIndex(here, bridge, state, mtu);
        addVeth(
          here,
          env,
          { name: host, mac: macs.host, mtu, master, up: true },
          {
            name: env.ifname,
            mac: macs.pod,
            mtu,
            gsoMaxSize,
          },
          log,
        );
        here.setLink(host, { alias: attachmentAlias(env.containerId, env.ifname) });
        if (!ptp && conf.hairpinMode) here.setHairpin(here.link(host).index, true);
      }),
    );
    const [ri, rh] = await Promise.allSettled([ipamP, early]);
    if (ri.status === "rejected") throw ri.reason;
    if (rh.status === "rejected") throw rh.reason;
    const ipamResult = ri.value;
    // Either family or both (dual stack: host-local's two range sets).
    const fam = (six: boolean) => {
      const ip = ipamResult.ips.find((x) => x.address.includes(":") === six);
      if (!ip) return undefined;
      const addr = ip.address.split("/")[0];
      const gw = ip.gateway ?? (six ? state.ipv6?.gateway : formatIpv4(state.gateway));
      if (!gw) throw new CniError(CniCode.ipam, `IPAM gave ${ip.address} without a gateway`);
      const v6 = state.ipv6;
      const len = six
        ? ptp
          ? 128
          : state.mode === "vxlan-l2"
            ? (v6?.networkLen ?? 64)
            : (v6?.len ?? Number(ip.address.split("/")[1]))
        : prefixLen;
      return { addr, gw, len, a: addrOf(addr), g: addrOf(gw) };
    };
    const fams = [fam(false), fam(true)].filter((f) => f !== undefined);
    if (fams.length === 0) throw new CniError(CniCode.ipam, "IPAM returned no address");
    if (ptp) {
      step(`routing ${fams.map((f) => f.addr).join(", ")} to ${host}`, () => {
        const idx = here.link(host).index;
        for (const f of fams) {
          addAddrOf(here, idx, f.g, f.g instanceof Uint8Array ? 128 : 32);
          here.addRoute({ dst: f.a, len: f.len, oif: idx, scope: RT_SCOPE_LINK });
        }
      });
    }

    const routes = ipamResult.routes.length
      ? ipamResult.routes
      : fams.map((f) => ({ dst: f.a instanceof Uint8Array ? "::/0" : "0.0.0.0/0", gw: f.gw }));
    const gwFor = (dst: string) => fams.find((f) => dst.includes(":") === f.addr.includes(":"))?.gw;
    inPodNs(env.netns, `configuring ${env.ifname} in ${env.netns}`, (pod) => {
      const idx = pod.link(env.ifname).index;
      for (const f of fams) addAddrOf(pod, idx, f.a, f.len);
      pod.setLink(idx, { up: true });
      for (const f of ptp ? fams : []) {
        pod.addRoute(
          { dst: f.g, len: f.g instanceof Uint8Array ? 128 : 32, oif: idx, scope: RT_SCOPE_LINK },
          "add",
        );
      }
      for (const r of routes) {
        const dst = routeDst(r.dst) ?? routeDst6(r.dst);
        const gw = r.gw ?? gwFor(r.dst);
        if (!dst || !gw)
          throw new CniError(
            CniCode.ipam,
            `IPAM route ${r.dst}: no prefix or gateway of our families`,
          );
        pod.addRoute({ ...dst, gateway: addrOf(gw), oif: idx }, "add");
      }
    });

    const result: CniResult = {
      interfaces: [
        { name: host, mac: macs.host, mtu },
        { name: env.ifname, mac: macs.pod, mtu, sandbox: env.netns },
      ],
      ips: fams.map((f) => ({ address: `${f.addr}/${f.len}`, gateway: f.gw, interface: 1 })),
      routes: routes.map((r) => ({ dst: r.dst, gw: r.gw ?? gwFor(r.dst) })),
      dns: ipamResult.dns && Object.keys(ipamResult.dns).length ? ipamResult.dns : (conf.dns ?? {}),
    };
    return chain(conf, result);
  } finally {
    here.close();
  }
}

/** An IPAM address as netlink takes it: a number (IPv4) or 16 bytes (IPv6). */
function addrOf(text: string): number | Uint8Array {
  const a = text.includes(":") ? parseIpv6(text) : parseIpv4(text);
  if (a === undefined) throw new CniError(CniCode.ipam, `IPAM address ${text} is not an address`);
  return a;
}

function addAddrOf(nl: Netlink, idx: number, a: number | Uint8Array, len: number): void {
  if (typeof a === "number") nl.addAddr(idx, a, len);
  else nl.addAddr6(idx, a, len);
}

/** "fd00::/8" or "::/0" as a netlink route's dst/len; undefined if it is not one. */
function routeDst6(s: string): { dst: Uint8Array; len: number } | undefined {
  const c = parseCidr6(s);
  return c && { dst: maskIpv6(c.addr, c.len), len: c.len };
}

/** The node bridge's ifindex; the first pod on the node creates it, with the gateway(s). */
function bridgeIndex(nl: Netlink, bridge: string, state: NodeState, mtu: number): number {
  const have = nl.index(bridge);
  if (have !== undefined) return have;
  const gwLen = state.mode === "vxlan-l2" ? state.network.len : state.subnet.len;
  const cidr = `${formatIpv4(state.gateway)}/${gwLen}`;
  const index = ensureBridgeNl(nl, bridge, { cidr, mtu, network: state.network });
  const v6 = state.ipv6;
  if (v6)
    nl.addAddr6(index, parseIpv6(v6.gateway)!, state.mode === "vxlan-l2" ? v6.networkLen : v6.len);
  return index;
}

/**
 * The veth pair, pod end created straight in the pod's namespace. The kernel makes both
 * ends or neither. A host end left by an ADD whose DEL never came (same container and
 * ifname, so ours) is replaced; a name taken in the pod is the caller's error.
 */
function addVeth(
  nl: Netlink,
  env: CniEnv,
  host: LinkAttrs & { name: string },
  pod: LinkAttrs & { name: string },
  log: Logger,
): void {
  withNsFd(env.netns, (nsFd) => {
    const add = () => nl.addVeth(host, { ...pod, nsFd });
    try {
      add();
    } catch (e) {
      if (!(e instanceof IpError && e.kind === "exists") || nl.index(host.name) === undefined) {
        throw e;
      }
      log.warn({ host: host.name }, "replacing a leftover host veth");
      nl.delLink(host.name);
      add();
    }
  });
}

/** Chained after another plugin: keep its interfaces and IPs, ours appended. */
function chain(conf: NetConf, ours: CniResult): CniResult {
  if (conf.prevResult === undefined) return ours;
  const prev = parseResult(conf.prevResult, "prevResult");
  const shift = prev.interfaces.length;
  return {
    interfaces: [...prev.interfaces, ...ours.interfaces],
    ips: [
      ...prev.ips,
      ...ours.ips.map((ip) => ({ ...ip, interface: (ip.interface ?? 0) + shift })),
    ],
    routes: [...prev.routes, ...ours.routes],
    dns: Object.keys(prev.dns).length ? prev.dns : ours.dns,
  };
}
