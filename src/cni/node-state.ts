// The node agent's flannel-style state file (subnet.env plus VXTUN_* keys), read for the
// CNI plugin. The agent (src/control/node-state.ts) owns the format and has a reader of
// its own; this one stays separate on purpose: the plugin's Node slow path starts a
// process per call, and the agent's module pulls in zod, yaml and the store. It also
// maps every problem to CNI's code 11 ("try again later") and yields numbers, not text.
import { readFileSync } from "node:fs";
import { parseCidr, parseIpv4 } from "../encap/addr.js";
import { formatIpv6, maskIpv6, parseCidr6 } from "../encap/addr6.js";
import { CniCode, CniError } from "./errors.js";

export type OverlayMode = "vxlan" | "vxlan-l2" | "ipip";

export interface NodeState {
  /** Whole overlay, e.g. 10.244.0.0/16. */
  network: { addr: number; len: number };
  /** This node's pod subnet (host bits cleared). */
  subnet: { addr: number; len: number };
  /** The node's gateway address in the subnet (FLANNEL_SUBNET's address, e.g. .1). */
  gateway: number;
  mtu: number;
  ipMasq: boolean;
  mode: OverlayMode;
  bridge: string;
  node: string;
  dataplaneSocket?: string;
  cniSocket?: string;
  /** Dual stack (FLANNEL_IPV6_NETWORK, FLANNEL_IPV6_SUBNET), as text: IPv6 is no number. */
  ipv6?: NodeState6;
}

export interface NodeState6 {
  /** The IPv6 pod network's prefix length (the bridge's in vxlan-l2). */
  networkLen: number;
  /** This node's IPv6 subnet, host bits clear ("fd00:0:0:1::/64"). */
  subnet: string;
  len: number;
  /** FLANNEL_IPV6_SUBNET's address, e.g. fd00:0:0:1::1. */
  gateway: string;
}

/** KEY=VALUE lines; '#' starts a comment (also after a value, as in the agent's file). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const s = line.replace(/(^|\s)#.*$/, "").trim();
    if (!s) continue;
    const eq = s.indexOf("=");
    if (eq <= 0) continue;
    out[s.slice(0, eq).trim()] = s.slice(eq + 1).trim();
  }
  return out;
}

export function readNodeState(file: string): NodeState {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CniError(
      CniCode.tryAgainLater,
      `node state ${file} is not there yet: the vxtun agent writes it when the node has a subnet`,
      err.code === "ENOENT" ? "" : err.message,
    );
  }
  return nodeStateFrom(parseEnvFile(text), file);
}

function nodeStateFrom(kv: Record<string, string>, file: string): NodeState {
  const bad = (key: string, why: string): never => {
    throw new CniError(CniCode.tryAgainLater, `node state ${file}: ${key} ${why}`);
  };
  const network = parseCidr(kv.FLANNEL_NETWORK ?? "") ?? bad("FLANNEL_NETWORK", "is not a prefix");
  const subnetText = kv.FLANNEL_SUBNET ?? "";
  const subnet = parseCidr(subnetText) ?? bad("FLANNEL_SUBNET", "is not a prefix");
  const gateway = parseIpv4(subnetText.split("/")[0]) ?? bad("FLANNEL_SUBNET", "has no address");
  const mtu = Number(kv.FLANNEL_MTU ?? "1450");
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) bad("FLANNEL_MTU", "is not an MTU");
  const mode = (kv.VXTUN_MODE ?? "vxlan") as OverlayMode;
  if (mode !== "vxlan" && mode !== "vxlan-l2" && mode !== "ipip") {
    bad("VXTUN_MODE", "must be vxlan, vxlan-l2 or ipip");
  }
  const bridge = kv.VXTUN_BRIDGE || "vxbr0";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(bridge)) bad("VXTUN_BRIDGE", "is not a link name");
  const st: NodeState = {
    network,
    subnet,
    gateway,
    mtu,
    ipMasq: kv.FLANNEL_IPMASQ === "true",
    mode,
    bridge,
    node: kv.VXTUN_NODE ?? "",
  };
  if (kv.VXTUN_DATAPLANE_SOCKET) st.dataplaneSocket = kv.VXTUN_DATAPLANE_SOCKET;
  if (kv.VXTUN_CNI_SOCKET) st.cniSocket = kv.VXTUN_CNI_SOCKET;
  if (kv.FLANNEL_IPV6_SUBNET) {
    const net6 =
      parseCidr6(kv.FLANNEL_IPV6_NETWORK ?? "") ?? bad("FLANNEL_IPV6_NETWORK", "is not a prefix");
    const sub6 =
      parseCidr6(kv.FLANNEL_IPV6_SUBNET) ?? bad("FLANNEL_IPV6_SUBNET", "is not a prefix");
    st.ipv6 = {
      networkLen: net6.len,
      subnet: `${formatIpv6(maskIpv6(sub6.addr, sub6.len))}/${sub6.len}`,
      len: sub6.len,
      gateway: formatIpv6(sub6.addr),
    };
  }
  return st;
}
