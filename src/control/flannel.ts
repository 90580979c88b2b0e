// flannel's etcd data model, spoken exactly so a vxtun node and flanneld nodes can share
// one cluster (docs/flannel-compat.md): `<prefix>/config` holds the network, `<prefix>/subnets/
// 10.244.1.0-24` one node's lease. Values are parsed leniently (flanneld adds fields we
// do not use) but the fields we rely on are checked, so a bad value is one clear line.
import { z } from "zod";
import type { Mode } from "../dataplane/config.js";
import { formatIpv4, parseCidr, parseIpv4, parseMac, prefixMask } from "../encap/addr.js";
import { parseIpv6 } from "../encap/addr6.js";
import { canonicalNet6, formatNet6, parseNet6 } from "./ip6net.js";

/** flannel's backend type for a vxtun mode; vxlan-l2 is wire-compatible vxlan. */
export function backendType(mode: Mode): "vxlan" | "ipip" {
  return mode === "ipip" ? "ipip" : "vxlan";
}

const backendData = z
  .object({ VNI: z.number().int().optional(), VtepMAC: z.string().optional() })
  .passthrough()
  .nullable()
  .optional();

export const leaseValueSchema = z
  .object({
    PublicIP: z.string().refine((s) => parseIpv4(s) !== undefined, "PublicIP is not IPv4"),
    /** flanneld writes null when the node has no IPv6 underlay address (a Go nil pointer). */
    PublicIPv6: z
      .string()
      .refine((s) => parseIpv6(s) !== undefined, "PublicIPv6 is not IPv6")
      .nullable()
      .optional(),
    BackendType: z.string(),
    BackendData: backendData,
    /** The IPv6 half of a dual-stack lease (flannel-v6.1's VNI and VTEP MAC). */
    BackendV6Data: backendData,
    /** vxtun-only: set to "vxlan-l2" so L3 nodes never mistake an L2 node for a peer. */
    VxtunMode: z.string().optional(),
  })
  .passthrough();
export type LeaseValue = z.infer<typeof leaseValueSchema>;

export const networkConfigSchema = z
  .object({
    Network: z.string().refine((s) => parseCidr(s) !== undefined, "Network is not a prefix"),
    SubnetLen: z.number().int().min(1).max(30).optional(),
    Backend: z
      .object({
        Type: z.string(),
        VNI: z.number().int().optional(),
        Port: z.number().int().optional(),
      })
      .passthrough()
      .optional(),
    VxtunMode: z.string().optional(),
    /** flannel's dual-stack fields; EnableIPv4 defaults to true, EnableIPv6 to false. */
    EnableIPv4: z.boolean().optional(),
    EnableIPv6: z.boolean().optional(),
    IPv6Network: z
      .string()
      .refine((s) => parseNet6(s) !== undefined, "IPv6Network is not an IPv6 prefix")
      .optional(),
    IPv6SubnetLen: z.number().int().min(1).max(126).optional(),
  })
  .passthrough();
export type NetworkConfig = z.infer<typeof networkConfigSchema>;

/** A stored value that cannot be read: retrying will not help, a person must look. */
export class CorruptValueError extends Error {
  override name = "CorruptValueError";
}

/** Parse a stored JSON value; throws one line naming `where`. */
export function parseJsonValue<T>(schema: z.ZodType<T>, text: string, where: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CorruptValueError(`${where}: not valid JSON`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new CorruptValueError(`${where}: ${i.path.join(".") || "(top level)"}: ${i.message}`);
  }
  return r.data;
}

// ---------------------------------------------------------------- subnets

/** A lease's identity: flannel keys a dual-stack lease by both of its subnets. */
export interface LeaseSubnets {
  /** "10.244.1.0/24". */
  subnet: string;
  /** "fd00:0:0:1::/64" in a dual-stack lease. */
  subnet6?: string;
}

/**
 * flannel's key name (subnet.MakeSubnetKey): "10.244.1.0-24", or dual-stack
 * "10.244.1.0-24&fd00:0:0:1::-64".
 */
export function subnetKey(subnet: string, subnet6?: string): string {
  const v4 = subnet.replace("/", "-");
  return subnet6 ? `${v4}&${subnet6.replace("/", "-")}` : v4;
}

/** Just the subnets of a record (no undefined subnet6 key, so records compare equal). */
export function subnetsOf(l: LeaseSubnets): LeaseSubnets {
  return l.subnet6 ? { subnet: l.subnet, subnet6: l.subnet6 } : { subnet: l.subnet };
}

/** A key name back to its subnets, or undefined if it is not a canonical subnet key. */
export function keySubnet(key: string): LeaseSubnets | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)-(\d{1,2})(?:&([0-9a-f:]+)-(\d{1,3}))?$/.exec(key);
  if (!m) return undefined;
  const net = parseCidr(`${m[1]}/${m[2]}`);
  if (!net || formatIpv4(net.addr) !== m[1]) return undefined;
  const subnet = `${m[1]}/${m[2]}`;
  if (m[3] === undefined) return { subnet };
  const subnet6 = `${m[3]}/${m[4]}`;
  return canonicalNet6(subnet6) === subnet6 ? { subnet, subnet6 } : undefined;
}

/** Every /subnetLen of `network` but the first (x.x.0.0, skipped as flannel does). */
export function candidateSubnets(network: string, subnetLen: number): string[] {
  const net = parseCidr(network);
  if (!net) throw new Error(`network ${network} is not a prefix`);
  if (subnetLen <= net.len || subnetLen > 30) {
    throw new Error(`subnetLen ${subnetLen} must be longer than the network's /${net.len}`);
  }
  const count = 2 ** (subnetLen - net.len);
  const step = 2 ** (32 - subnetLen);
  const out: string[] = [];
  for (let i = 1; i < count; i++)
    out.push(`${formatIpv4((net.addr + i * step) >>> 0)}/${subnetLen}`);
  return out;
}

/** Is `subnet` a /subnetLen inside `network` (and not the skipped first one)? */
export function subnetFits(subnet: string, network: string, subnetLen: number): boolean {
  const s = parseCidr(subnet);
  const n = parseCidr(network);
  if (!s || !n || s.len !== subnetLen || `${formatIpv4(s.addr)}/${s.len}` !== subnet) return false;
  return (s.addr & prefixMask(n.len)) >>> 0 === n.addr && s.addr !== n.addr;
}

/** The node's gateway: the first host of its subnet (10.244.1.0/24 -> 10.244.1.1). */
export function gatewayOf(subnet: string): string {
  const s = parseCidr(subnet)!;
  return formatIpv4((s.addr + 1) >>> 0);
}

// ---------------------------------------------------------------- our values

/** The IPv6 half of the pod network (flannel's EnableIPv6, IPv6Network, IPv6SubnetLen). */
export interface Ipv6Network {
  network: string;
  subnetLen: number;
}

export interface NodeIdentity {
  mode: Mode;
  publicIp: string;
  vni: number;
  port: number;
  vtepMac: string;
  /** Dual stack: the lease carries BackendV6Data (one device, so the same VTEP MAC). */
  ipv6?: boolean;
  /** The node's IPv6 underlay address, published as PublicIPv6 (flanneld: --public-ipv6). */
  publicIpv6?: string;
}

/** Our lease in flanneld's format (plus VxtunMode only where flannel has no equivalent). */
export function leaseValueFor(n: NodeIdentity): LeaseValue {
  const data = n.mode === "ipip" ? {} : { VNI: n.vni, VtepMAC: n.vtepMac };
  const v: LeaseValue = {
    PublicIP: n.publicIp,
    ...(n.publicIpv6 ? { PublicIPv6: n.publicIpv6 } : {}),
    BackendType: backendType(n.mode),
    BackendData: data,
  };
  if (n.ipv6) v.BackendV6Data = { ...data };
  if (n.mode === "vxlan-l2") v.VxtunMode = "vxlan-l2";
  return v;
}

/** The network config the first agent writes. */
export function networkConfigFor(
  network: string,
  subnetLen: number,
  n: Pick<NodeIdentity, "mode" | "vni" | "port">,
  v6?: Ipv6Network,
): NetworkConfig {
  const c: NetworkConfig = {
    Network: network,
    SubnetLen: subnetLen,
    ...(v6 ? { EnableIPv6: true, IPv6Network: v6.network, IPv6SubnetLen: v6.subnetLen } : {}),
    Backend: n.mode === "ipip" ? { Type: "ipip" } : { Type: "vxlan", VNI: n.vni, Port: n.port },
  };
  if (n.mode === "vxlan-l2") c.VxtunMode = "vxlan-l2";
  return c;
}

/**
 * Why the stored network config cannot serve this node, or undefined if it can. Absent
 * fields take flannel's defaults (SubnetLen 24, VNI 1, Port 8472 — the kernel's port;
 * IPv6SubnetLen 64 on an IPv6Network of /62 or shorter, else its length + 2).
 */
export function configMismatch(
  stored: NetworkConfig,
  network: string,
  subnetLen: number,
  n: Pick<NodeIdentity, "mode" | "vni" | "port">,
  v6?: Ipv6Network,
): string | undefined {
  const want = networkConfigFor(network, subnetLen, n);
  const diffs: string[] = [];
  const cmp = (what: string, have: unknown, ours: unknown) => {
    if (have !== ours) diffs.push(`${what} ${JSON.stringify(have)} (ours ${JSON.stringify(ours)})`);
  };
  const sNet = parseCidr(stored.Network)!;
  cmp("Network", `${formatIpv4(sNet.addr)}/${sNet.len}`, network);
  cmp("SubnetLen", stored.SubnetLen ?? 24, subnetLen);
  cmp("Backend.Type", stored.Backend?.Type ?? "udp", want.Backend?.Type);
  if (want.Backend?.Type === "vxlan") {
    cmp("Backend.VNI", stored.Backend?.VNI ?? 1, n.vni);
    cmp("Backend.Port", stored.Backend?.Port || 8472, n.port);
  }
  cmp("VxtunMode", stored.VxtunMode ?? "l3", n.mode === "vxlan-l2" ? "vxlan-l2" : "l3");
  cmp("EnableIPv4", stored.EnableIPv4 ?? true, true);
  cmp("EnableIPv6", stored.EnableIPv6 ?? false, v6 !== undefined);
  if (v6 && stored.EnableIPv6) {
    const s6 = stored.IPv6Network ? parseNet6(stored.IPv6Network) : undefined;
    cmp("IPv6Network", s6 && formatNet6(s6), v6.network);
    const dflt = s6 ? (s6.len <= 62 ? 64 : s6.len + 2) : undefined;
    cmp("IPv6SubnetLen", stored.IPv6SubnetLen || dflt, v6.subnetLen);
  }
  return diffs.length ? diffs.join(", ") : undefined;
}

/** What another node's lease asks us to program (flanneld's vxlan_network.go, per family). */
export interface LeasePeer {
  address: string;
  subnet: string;
  vtepMac?: string;
  /** Dual stack: the node's IPv6 pod subnet; its VTEP address is the subnet's first. */
  subnet6?: string;
  /** BackendV6Data.VtepMAC (flanneld's flannel-v6.1 has a MAC of its own). */
  vtepMac6?: string;
  /** PublicIPv6, when the node has an IPv6 underlay address. */
  publicIpv6?: string;
}

/**
 * A peer from another node's lease, or why it cannot be one in our mode. The IPv6 half
 * is taken only when we run dual stack (`ipv6`) and the lease has one; a lease whose
 * IPv6 half is unusable is still a peer for IPv4. Over an IPv6 underlay (`underlay6`)
 * the node is reached at its PublicIPv6 (as flannel-v6.1's FDB entries point there), so
 * a lease without one cannot be a peer.
 */
export function peerFromLease(
  lease: LeaseSubnets,
  v: LeaseValue,
  mode: Mode,
  ipv6 = false,
  underlay6 = false,
): LeasePeer | string {
  const { subnet, subnet6 } = lease;
  if (v.BackendType !== backendType(mode))
    return `backend ${v.BackendType}, ours ${backendType(mode)}`;
  const l2 = v.VxtunMode === "vxlan-l2";
  if (l2 !== (mode === "vxlan-l2")) return `mode ${l2 ? "vxlan-l2" : "L3"} differs from ours`;
  if (underlay6 && !v.PublicIPv6) return "no PublicIPv6 to reach it over our IPv6 underlay";
  const peer: LeasePeer = { address: v.PublicIP, subnet };
  if (v.PublicIPv6) peer.publicIpv6 = v.PublicIPv6;
  if (mode === "vxlan") {
    const mac = v.BackendData?.VtepMAC;
    if (!mac || parseMac(mac) === undefined) return "no valid BackendData.VtepMAC";
    peer.vtepMac = mac.toLowerCase();
  }
  if (!ipv6 || !subnet6 || mode === "vxlan-l2") return peer;
  if (mode === "vxlan") {
    const mac6 = v.BackendV6Data?.VtepMAC;
    if (!mac6 || parseMac(mac6) === undefined) return peer;
    peer.vtepMac6 = mac6.toLowerCase();
  }
  peer.subnet6 = subnet6;
  return peer;
}
