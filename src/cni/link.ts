// Names and errors for one attachment's links. The plugin runs in the node's namespace
// (HERE); the pod's namespace is reached by path: `ip link add … peer … netns <path>`
// places the pod end directly (iproute2 opens a name containing '/' as a path), and
// src/system/iproute.ts runs `nsenter --net=<path> ip …` to configure it. nsenter rather
// than `ip netns attach` or a bind mount: it leaves nothing behind when the plugin dies,
// and accepts /run/netns/x and /proc/PID/ns/net alike.
import { createHash } from "node:crypto";
import * as ipr from "../system/iproute.js";
import { CniCode, CniError } from "./errors.js";

/** The node's namespace, where the plugin runs. */
export const HERE = "";

/** Host-side veth: "vx" + 11 hex of sha256(containerID + ifname) — 13 of 15 characters. */
export function hostVethName(containerId: string, ifname: string): string {
  return `vx${createHash("sha256")
    .update(containerId + ifname)
    .digest("hex")
    .slice(0, 11)}`;
}

/** Both MACs come from the same digest, so no query is needed to report them. */
export function vethMacs(containerId: string, ifname: string): { host: string; pod: string } {
  const d = createHash("sha256").update(`mac/${containerId}/${ifname}`).digest();
  const mac = (o: number) => {
    const b = [...d.subarray(o, o + 6)];
    b[0] = (b[0] & 0xfe) | 0x02; // unicast, locally administered
    return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
  };
  return { host: mac(0), pod: mac(6) };
}

/** Link alias recording the attachment, so GC can find stale veths without a state store. */
export function attachmentAlias(containerId: string, ifname: string): string {
  return `vxtun/${containerId}/${ifname}`;
}

/** Run an iproute2 step; its failure becomes the plugin's dataplane error, saying `what`. */
export async function step<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    const why = e instanceof ipr.IpError ? e.detail : (e as Error).message;
    throw new CniError(CniCode.dataplane, `${what}: ${why}`);
  }
}

/** Delete a link here (its veth peer goes with it); a missing one is not an error. */
export function deleteLink(name: string): Promise<void> {
  return step(`deleting ${name}`, ipr.linkDel(HERE, name).catch(ipr.unless("not-found")));
}

export interface LinkJson {
  ifname: string;
  ifalias?: string;
  mtu: number;
  address?: string;
  master?: string;
  operstate?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}
