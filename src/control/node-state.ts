// The node state file: flanneld's /run/flannel/subnet.env format (KEY=value lines, so
// existing CNI configs and scripts can read it) plus vxtun's own keys. The agent writes
// it; the CNI plugin reads it with readNodeState().
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { MODES, type Mode } from "../dataplane/config.js";
import { parseCidr } from "../encap/addr.js";
import { parseCidr6 } from "../encap/addr6.js";
import { writeFileAtomic } from "./file-store.js";

export interface NodeState {
  /** FLANNEL_NETWORK, e.g. 10.244.0.0/16. */
  network: string;
  /** FLANNEL_SUBNET: the gateway with the subnet's prefix, e.g. 10.244.1.1/24. */
  subnet: string;
  /** FLANNEL_IPV6_NETWORK (dual stack), e.g. fd00::/48. */
  ipv6Network?: string;
  /** FLANNEL_IPV6_SUBNET: the IPv6 gateway with the subnet's prefix, e.g. fd00:0:0:1::1/64. */
  ipv6Subnet?: string;
  /** FLANNEL_MTU: the overlay device MTU (pods use it). */
  mtu: number;
  /** FLANNEL_IPMASQ. */
  ipMasq: boolean;
  mode: Mode;
  /** Node bridge the pod veths join. */
  bridge: string;
  node: string;
  dataplaneSocket: string;
  cniSocket: string;
}

export function formatNodeState(s: NodeState): string {
  return [
    `FLANNEL_NETWORK=${s.network}`,
    `FLANNEL_SUBNET=${s.subnet}`,
    // flanneld's order (subnet.WriteSubnetFile): the IPv6 pair after the IPv4 one.
    ...(s.ipv6Network && s.ipv6Subnet
      ? [`FLANNEL_IPV6_NETWORK=${s.ipv6Network}`, `FLANNEL_IPV6_SUBNET=${s.ipv6Subnet}`]
      : []),
    `FLANNEL_MTU=${s.mtu}`,
    `FLANNEL_IPMASQ=${s.ipMasq}`,
    `VXTUN_MODE=${s.mode}`,
    `VXTUN_BRIDGE=${s.bridge}`,
    `VXTUN_NODE=${s.node}`,
    `VXTUN_DATAPLANE_SOCKET=${s.dataplaneSocket}`,
    `VXTUN_CNI_SOCKET=${s.cniSocket}`,
    "",
  ].join("\n");
}

/** Atomically (temp file + rename): a reader never sees half a file. */
export function writeNodeState(file: string, s: NodeState): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileAtomic(file, formatNodeState(s));
}

/** Read and check a node state file; one-line errors name the file. */
export function readNodeState(file: string): NodeState {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === "ENOENT"
        ? `node state ${file} not found: is 'vxtun agent' running on this node?`
        : `cannot read node state ${file}: ${code ?? (e as Error).message}`,
    );
  }
  const kv = new Map<string, string>();
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`node state ${file} is corrupt: line ${i + 1} is not KEY=value`);
    kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const need = (k: string): string => {
    const v = kv.get(k);
    if (v === undefined || v === "") throw new Error(`node state ${file} is corrupt: ${k} missing`);
    return v;
  };
  const bad = (k: string, why: string): never => {
    throw new Error(`node state ${file} is corrupt: ${k}=${kv.get(k)} ${why}`);
  };
  const network = need("FLANNEL_NETWORK");
  if (!parseCidr(network)) bad("FLANNEL_NETWORK", "is not a prefix");
  const subnet = need("FLANNEL_SUBNET");
  if (!parseCidr(subnet)) bad("FLANNEL_SUBNET", "is not an address/prefix");
  const v6 = ["FLANNEL_IPV6_NETWORK", "FLANNEL_IPV6_SUBNET"].map((k) => kv.get(k));
  if (v6[0] !== undefined && !parseCidr6(v6[0])) bad("FLANNEL_IPV6_NETWORK", "is not a prefix");
  if (v6[1] !== undefined && !parseCidr6(v6[1]))
    bad("FLANNEL_IPV6_SUBNET", "is not an address/prefix");
  const mtu = Number(need("FLANNEL_MTU"));
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) bad("FLANNEL_MTU", "is not an MTU");
  const masq = kv.get("FLANNEL_IPMASQ") ?? "false";
  if (masq !== "true" && masq !== "false") bad("FLANNEL_IPMASQ", "is not true/false");
  // A flanneld-written file has no VXTUN_* keys: read it as vxlan with flannel's names.
  const mode = (kv.get("VXTUN_MODE") ?? "vxlan") as Mode;
  if (!MODES.includes(mode)) bad("VXTUN_MODE", `is not one of ${MODES.join(", ")}`);
  return {
    network,
    subnet,
    ...(v6[0] && v6[1] ? { ipv6Network: v6[0], ipv6Subnet: v6[1] } : {}),
    mtu,
    ipMasq: masq === "true",
    mode,
    bridge: kv.get("VXTUN_BRIDGE") ?? "cni0",
    node: kv.get("VXTUN_NODE") ?? "",
    dataplaneSocket: kv.get("VXTUN_DATAPLANE_SOCKET") ?? "",
    cniSocket: kv.get("VXTUN_CNI_SOCKET") ?? "",
  };
}
