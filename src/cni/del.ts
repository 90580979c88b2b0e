// DEL and GC. DEL never needs the pod's namespace: deleting the host end of a veth
// deletes the pair, so a vanished netns, missing links, repeated calls and DEL without
// ADD all succeed. The lease is released first and always.
import { join } from "node:path";
import { withNetlink } from "../system/netlink.js";
import type { NetConf } from "./config.js";
import type { CniEnv } from "./env.js";
import { CniError } from "./errors.js";
import { delegate, hostLocalLeases, ipamDel, ipamSection } from "./ipam.js";
import { deleteLink, HERE, hostVethName, step } from "./link.js";
import type { Logger } from "./log.js";
import { type NodeState, readNodeState } from "./node-state.js";

/** DEL works without the agent: the state file only fills in the IPAM range. */
function stateIfAny(conf: NetConf): NodeState | undefined {
  try {
    return readNodeState(conf.stateFile);
  } catch (e) {
    if (e instanceof CniError) return undefined;
    throw e;
  }
}

export async function cmdDel(env: CniEnv, conf: NetConf, log: Logger): Promise<void> {
  let ipamErr: unknown;
  try {
    await ipamDel(env, conf, stateIfAny(conf));
  } catch (e) {
    ipamErr = e;
  }
  await deleteLink(hostVethName(env.containerId, env.ifname));
  if (ipamErr) {
    log.error({ err: (ipamErr as Error).message, containerId: env.containerId }, "IPAM DEL failed");
    throw ipamErr;
  }
}

/**
 * GC: every veth we created carries the alias vxtun/<containerID>/<ifname>, and
 * host-local's lease files name their owner, so stale attachments are found without a
 * state store of our own. Leases are released through IPAM DEL (host-local 1.1 has no GC).
 */
export async function cmdGc(env: CniEnv, conf: NetConf, log: Logger): Promise<void> {
  const valid = new Set((conf.validAttachments ?? []).map((a) => `${a.containerID}/${a.ifname}`));
  const links = step("listing veths", () => withNetlink(HERE, (nl) => nl.links()));
  for (const l of links) {
    const m = /^vxtun\/([^/]+)\/([^/]+)$/.exec(l.alias ?? "");
    if (l.kind !== "veth" || !m || valid.has(`${m[1]}/${m[2]}`)) continue;
    if (l.name !== hostVethName(m[1], m[2])) continue; // not ours after all
    log.info({ link: l.name, containerId: m[1] }, "GC: removing stale veth");
    await deleteLink(l.name);
  }
  const state = stateIfAny(conf);
  const ipam = ipamSection(conf, state);
  if (ipam.type !== "host-local") {
    await delegate("GC", env, conf, ipam);
    return;
  }
  const dir = join(String(ipam.dataDir ?? conf.dataDir), conf.name);
  for (const lease of hostLocalLeases(dir)) {
    if (!lease.containerID || valid.has(`${lease.containerID}/${lease.ifname}`)) continue;
    log.info({ lease: lease.file, containerId: lease.containerID }, "GC: releasing stale lease");
    await ipamDel(env, conf, state, {
      CNI_CONTAINERID: lease.containerID,
      CNI_IFNAME: lease.ifname || "eth0",
      CNI_NETNS: "",
    });
  }
}
