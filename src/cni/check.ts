// CHECK: the pod interface of prevResult exists in the netns with its MAC, MTU, addresses
// and routes, the host veth is up (on the bridge in bridge mode), and IPAM agrees.

import { formatIpv4, parseIpv4 } from "../encap/addr.js";
import { routeDst, unlessKind, withNetlink } from "../system/netlink.js";
import { requireNetns } from "./add.js";
import type { NetConf } from "./config.js";
import type { CniEnv } from "./env.js";
import { CniCode, CniError } from "./errors.js";
import { ipamCheck } from "./ipam.js";
import { HERE, hostVethName, inPodNs, step } from "./link.js";
import { readNodeState } from "./node-state.js";
import { parseResult } from "./version.js";

function fail(msg: string): never {
  throw new CniError(CniCode.dataplane, `CHECK: ${msg}`);
}

export async function cmdCheck(env: CniEnv, conf: NetConf): Promise<void> {
  if (conf.prevResult === undefined) {
    throw new CniError(
      CniCode.invalidConfig,
      "CHECK needs prevResult",
      "the runtime must pass the ADD result",
    );
  }
  requireNetns(env.netns);
  const state = readNodeState(conf.stateFile);
  await ipamCheck(env, conf, state);
  const prev = parseResult(conf.prevResult, "prevResult");
  const idx = prev.interfaces.findIndex((i) => i.name === env.ifname && i.sandbox === env.netns);
  if (idx < 0) fail(`prevResult has no interface ${env.ifname} in ${env.netns}`);
  const want = prev.interfaces[idx];

  const mtu = conf.mtu ?? state.mtu;
  const wantMtu = want.mtu ?? mtu;
  inPodNs(env.netns, "CHECK", (nl) => {
    const link = unlessKind("not-found", () => nl.link(env.ifname));
    if (!link) fail(`${env.ifname} is missing in ${env.netns}`);
    if (link.mtu !== wantMtu) fail(`${env.ifname} has MTU ${link.mtu}, expected ${wantMtu}`);
    if (want.mac && link.mac?.toLowerCase() !== want.mac.toLowerCase()) {
      fail(`${env.ifname} has MAC ${link.mac}, expected ${want.mac}`);
    }
    const have = new Set([
      ...nl.addrs(link.index).map((a) => `${formatIpv4(a.addr)}/${a.len}`),
      ...nl.addrs6(link.index),
    ]);
    for (const ip of prev.ips) {
      if (ip.interface === idx && !have.has(ip.address)) fail(`${env.ifname} lacks ${ip.address}`);
    }
    const routes = nl.routes();
    // IPv4 routes (the netlink module lists the main table's IPv4 ones); IPv6 addresses above.
    for (const r of prev.routes.filter((x) => !x.dst.includes(":"))) {
      const dst = routeDst(r.dst);
      const gw = r.gw === undefined ? undefined : parseIpv4(r.gw);
      const ok = routes.some(
        (x) => x.dst === dst?.dst && x.len === dst.len && (gw === undefined || x.gateway === gw),
      );
      if (!ok) fail(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ""} is missing in ${env.netns}`);
    }
  });
  const host = hostVethName(env.containerId, env.ifname);
  const bridge = conf.bridge ?? state.bridge;
  step("CHECK", () =>
    withNetlink(HERE, (nl) => {
      const hostLink = unlessKind("not-found", () => nl.link(host));
      if (!hostLink) fail(`host veth ${host} is missing`);
      if (conf.mode === "bridge" && hostLink.master !== nl.index(bridge)) {
        fail(`host veth ${host} is not on bridge ${bridge}`);
      }
    }),
  );
}
