// Names and errors for one attachment's links. The plugin runs in the node's namespace
// (HERE); the pod's namespace is reached by path (/run/netns/x and /proc/PID/ns/net
// alike): the veth's pod end is created there by the fd of that path (IFLA_NET_NS_FD),
// and configured through a netlink socket opened inside it. Neither leaves anything
// behind when the plugin dies (no `ip netns attach`, no bind mount).
import { createHash } from "node:crypto";
import { IpError } from "../system/iproute.js";
import { Netlink, unlessKind, withNetlink } from "../system/netlink.js";
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

/** Run a netlink step; its failure becomes the plugin's dataplane error, saying `what`. */
export function step<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CniError) throw e;
    const why = e instanceof IpError ? e.detail : (e as Error).message;
    throw new CniError(CniCode.dataplane, `${what}: ${why}`);
  }
}

/**
 * `fn` with a netlink socket inside the pod's namespace. A namespace that vanished
 * under us is the spec's "unknown container", like one that was never there.
 */
export function inPodNs<T>(netns: string, what: string, fn: (nl: Netlink) => T): T {
  let nl: Netlink;
  try {
    nl = new Netlink(netns);
  } catch (e) {
    if (e instanceof IpError && e.kind === "not-found") {
      throw new CniError(CniCode.unknownContainer, `network namespace ${netns} does not exist`);
    }
    throw new CniError(CniCode.dataplane, `${what}: ${(e as Error).message}`);
  }
  try {
    return step(what, () => fn(nl));
  } finally {
    nl.close();
  }
}

/** Delete a link here (its veth peer goes with it); a missing one is not an error. */
export async function deleteLink(name: string): Promise<void> {
  step(`deleting ${name}`, () =>
    withNetlink(HERE, (nl) => unlessKind("not-found", () => nl.delLink(name))),
  );
}
