// CHECK: the pod interface of prevResult exists in the netns with its MAC, MTU, addresses
// and routes, the host veth is up (on the bridge in bridge mode), and IPAM agrees.

import * as ipr from "../system/iproute.js";
import { requireNetns } from "./add.js";
import type { NetConf } from "./config.js";
import type { CniEnv } from "./env.js";
import { CniCode, CniError } from "./errors.js";
import { delegate, ipamSection } from "./ipam.js";
import { HERE, hostVethName, type LinkJson, step } from "./link.js";
import { readNodeState } from "./node-state.js";
import { parseResult } from "./version.js";

interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
}

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
  await delegate("CHECK", env, conf, ipamSection(conf, state));
  const prev = parseResult(conf.prevResult, "prevResult");
  const idx = prev.interfaces.findIndex((i) => i.name === env.ifname && i.sandbox === env.netns);
  if (idx < 0) fail(`prevResult has no interface ${env.ifname} in ${env.netns}`);
  const want = prev.interfaces[idx];

  const links = await step(
    "CHECK",
    ipr
      .ipJson<LinkJson[]>(env.netns, ["addr", "show", "dev", env.ifname])
      .catch(ipr.unless("not-found")),
  );
  const link = links?.[0];
  if (!link) fail(`${env.ifname} is missing in ${env.netns}`);
  const mtu = conf.mtu ?? state.mtu;
  if (link.mtu !== (want.mtu ?? mtu))
    fail(`${env.ifname} has MTU ${link.mtu}, expected ${want.mtu ?? mtu}`);
  if (want.mac && link.address?.toLowerCase() !== want.mac.toLowerCase()) {
    fail(`${env.ifname} has MAC ${link.address}, expected ${want.mac}`);
  }
  const have = new Set((link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
  for (const ip of prev.ips) {
    if (ip.interface === idx && !have.has(ip.address)) fail(`${env.ifname} lacks ${ip.address}`);
  }
  const routes = await step("CHECK", ipr.ipJson<RouteJson[]>(env.netns, ["route", "show"]));
  for (const r of prev.routes) {
    const dst = r.dst === "0.0.0.0/0" ? "default" : r.dst;
    const ok = routes.some(
      (x) => (x.dst === dst || `${x.dst}/32` === dst) && (!r.gw || x.gateway === r.gw),
    );
    if (!ok) fail(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ""} is missing in ${env.netns}`);
  }
  const host = hostVethName(env.containerId, env.ifname);
  const hostLinks = await step(
    "CHECK",
    ipr.ipJson<LinkJson[]>(HERE, ["link", "show", "dev", host]).catch(ipr.unless("not-found")),
  );
  const hostLink = hostLinks?.[0];
  if (!hostLink) fail(`host veth ${host} is missing`);
  if (conf.mode === "bridge" && hostLink.master !== (conf.bridge ?? state.bridge)) {
    fail(`host veth ${host} is not on bridge ${conf.bridge ?? state.bridge}`);
  }
}
