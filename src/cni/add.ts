// ADD: IPAM first (it may say "no addresses left" before we touch any link), then the
// veth pair with its pod end placed straight into the pod's namespace, the host end on
// the node bridge (or routed /32 in ptp mode), and the pod's address and routes. Any
// failure after IPAM undoes the links and releases the lease.
import { existsSync } from "node:fs";
import { formatIpv4 } from "../encap/addr.js";
import { podGsoMaxSize } from "../io/gso-batch.js";
import * as ipr from "../system/iproute.js";
import type { NetConf } from "./config.js";
import type { CniEnv } from "./env.js";
import { CniCode, CniError } from "./errors.js";
import { delegate, ipamSection } from "./ipam.js";
import { attachmentAlias, deleteLink, HERE, hostVethName, step, vethMacs } from "./link.js";
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
  const ipam = ipamSection(conf, state);
  const ipamP = delegate("ADD", env, conf, ipam);
  try {
    return await wire(env, conf, state, ipamP as Promise<CniResult>, log);
  } catch (e) {
    log.warn({ err: (e as Error).message, containerId: env.containerId }, "ADD failed, undoing");
    await deleteLink(hostVethName(env.containerId, env.ifname)).catch(() => {});
    await delegate("DEL", env, conf, ipam).catch((d: Error) =>
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
  const alias = attachmentAlias(env.containerId, env.ifname);
  // The whole overlay is one L2 segment in vxlan-l2; in L3 modes the node subnet is.
  const prefixLen = ptp ? 32 : state.mode === "vxlan-l2" ? state.network.len : state.subnet.len;
  // VXLAN modes: the pod end's gso_max_size keeps its TCP super-packets to what one
  // UDP_SEGMENT send carries (a 64 KiB one leaves as 44 + 1 segments at MTU 1450: two
  // sends, two datagrams to receive; pod to pod TCP measured 2.9-3.1 Gbit/s that way,
  // 3.6-3.9 with the limit). The pod end only: the host end carries our coalesced
  // writes to the pod, which must not be cut again. Not on the TUN either: a forwarded
  // GSO packet longer than the TUN's limit is segmented in software before us.
  const podGso = podGsoMaxSize(state.mode, mtu);
  const gso = podGso === undefined ? [] : ["gso_max_size", String(podGso)];
  const veth = [
    ...["link", "add", host, "address", macs.host, "mtu", String(mtu), "type", "veth"],
    ...["peer", "name", env.ifname, "address", macs.pod, "mtu", String(mtu), ...gso],
    ...["netns", env.netns],
  ];
  const plumb = (hostSide: string[][]) => plumbHost(host, veth, hostSide, state, bridge, mtu, log);

  // Bridge mode needs no address on the host side, so the veth is created and attached
  // while IPAM runs (the two are the bulk of ADD's time). Both settle before any cleanup.
  const early = ptp
    ? Promise.resolve()
    : plumb([
        ["link", "set", "dev", host, "alias", alias],
        ["link", "set", "dev", host, "master", bridge],
        ...(conf.hairpinMode
          ? [["link", "set", "dev", host, "type", "bridge_slave", "hairpin", "on"]]
          : []),
        ["link", "set", "dev", host, "up"],
      ]);
  const [ri, rh] = await Promise.allSettled([ipamP, early]);
  if (ri.status === "rejected") throw ri.reason;
  if (rh.status === "rejected") throw rh.reason;
  const ipamResult = ri.value;
  const v4 = ipamResult.ips.find((ip) => !ip.address.includes(":"));
  if (!v4) throw new CniError(CniCode.ipam, "IPAM returned no IPv4 address");
  const podIp = v4.address.split("/")[0];
  const gw = v4.gateway ?? formatIpv4(state.gateway);
  if (ptp) {
    await plumb([
      ["link", "set", "dev", host, "alias", alias, "up"],
      ["addr", "add", `${gw}/32`, "dev", host],
      ["route", "replace", `${podIp}/32`, "dev", host, "scope", "link"],
    ]);
  }

  const routes = ipamResult.routes.length ? ipamResult.routes : [{ dst: "0.0.0.0/0", gw }];
  const podSide: string[][] = [
    ["addr", "add", `${podIp}/${prefixLen}`, "dev", env.ifname],
    ["link", "set", "dev", env.ifname, "up"],
  ];
  if (ptp) podSide.push(["route", "add", `${gw}/32`, "dev", env.ifname, "scope", "link"]);
  for (const r of routes) {
    const dst = r.dst === "0.0.0.0/0" ? "default" : r.dst;
    podSide.push(["route", "add", dst, "via", r.gw ?? gw, "dev", env.ifname]);
  }
  await step(`configuring ${env.ifname} in ${env.netns}`, ipr.ipBatch(env.netns, podSide));

  const result: CniResult = {
    interfaces: [
      { name: host, mac: macs.host, mtu },
      { name: env.ifname, mac: macs.pod, mtu, sandbox: env.netns },
    ],
    ips: [{ address: `${podIp}/${prefixLen}`, gateway: gw, interface: 1 }],
    routes: routes.map((r) => ({ dst: r.dst, gw: r.gw ?? gw })),
    dns: ipamResult.dns && Object.keys(ipamResult.dns).length ? ipamResult.dns : (conf.dns ?? {}),
  };
  return chain(conf, result);
}

/** Create the veth (pod end straight into the netns) and run the host-side commands. */
async function plumbHost(
  host: string,
  veth: string[],
  hostSide: string[][],
  state: NodeState,
  bridge: string,
  mtu: number,
  log: Logger,
): Promise<void> {
  const attach = (lines: string[][]) => ipr.ipBatch(HERE, lines).then(() => undefined, ipError);
  let f = await attach([veth, ...hostSide]);
  // `ip -batch` stops at the first failed line; of ours only the veth can exist already,
  // and only the bridge can be missing (the veth was made by the same batch).
  if (f?.kind === "exists") {
    // A host veth left by an ADD whose DEL never came: same container and ifname, so ours.
    log.warn({ host }, "replacing a leftover host veth");
    await deleteLink(host);
    f = await attach([veth, ...hostSide]);
  }
  if (f?.kind === "not-found") {
    // First pod on this node: the bridge is created on demand with the gateway address.
    const gwLen = state.mode === "vxlan-l2" ? state.network.len : state.subnet.len;
    const cidr = `${formatIpv4(state.gateway)}/${gwLen}`;
    await step(
      `bridge ${bridge}`,
      ipr.ensureBridge(HERE, bridge, { cidr, mtu, network: state.network }),
    );
    f = await attach(hostSide.slice(1)); // the veth and its alias are in place
  }
  if (f) throw new CniError(CniCode.dataplane, `creating and attaching veth ${host}: ${f.detail}`);
}

/** An iproute2 failure as a value, to be told apart by kind; anything else rethrown. */
function ipError(e: unknown): ipr.IpError {
  if (e instanceof ipr.IpError) return e;
  throw e;
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
