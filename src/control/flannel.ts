// flannel's etcd data model, spoken exactly so a vxtun node and flanneld nodes can share
// one cluster (docs/flannel-compat.md): `<prefix>/config` holds the network, `<prefix>/subnets/
// 10.244.1.0-24` one node's lease. Values are parsed leniently (flanneld adds fields we
// do not use) but the fields we rely on are checked, so a bad value is one clear line.
import { z } from "zod";
import type { Mode } from "../dataplane/config.js";
import { formatIpv4, parseCidr, parseIpv4, parseMac, prefixMask } from "../encap/addr.js";

/** flannel's backend type for a vxtun mode; vxlan-l2 is wire-compatible vxlan. */
export function backendType(mode: Mode): "vxlan" | "ipip" {
  return mode === "ipip" ? "ipip" : "vxlan";
}

export const leaseValueSchema = z
  .object({
    PublicIP: z.string().refine((s) => parseIpv4(s) !== undefined, "PublicIP is not IPv4"),
    BackendType: z.string(),
    BackendData: z
      .object({ VNI: z.number().int().optional(), VtepMAC: z.string().optional() })
      .passthrough()
      .nullable()
      .optional(),
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

/** "10.244.1.0/24" -> "10.244.1.0-24" (flannel's key name). */
export function subnetKey(subnet: string): string {
  return subnet.replace("/", "-");
}

/** "10.244.1.0-24" -> "10.244.1.0/24", or undefined if it is not a canonical subnet key. */
export function keySubnet(key: string): string | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)-(\d{1,2})$/.exec(key);
  if (!m) return undefined;
  const net = parseCidr(`${m[1]}/${m[2]}`);
  if (!net || formatIpv4(net.addr) !== m[1]) return undefined;
  return `${m[1]}/${m[2]}`;
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

export interface NodeIdentity {
  mode: Mode;
  publicIp: string;
  vni: number;
  port: number;
  vtepMac: string;
}

/** Our lease in flanneld's format (plus VxtunMode only where flannel has no equivalent). */
export function leaseValueFor(n: NodeIdentity): LeaseValue {
  const v: LeaseValue = {
    PublicIP: n.publicIp,
    BackendType: backendType(n.mode),
    BackendData: n.mode === "ipip" ? {} : { VNI: n.vni, VtepMAC: n.vtepMac },
  };
  if (n.mode === "vxlan-l2") v.VxtunMode = "vxlan-l2";
  return v;
}

/** The network config the first agent writes. */
export function networkConfigFor(
  network: string,
  subnetLen: number,
  n: Pick<NodeIdentity, "mode" | "vni" | "port">,
): NetworkConfig {
  const c: NetworkConfig = {
    Network: network,
    SubnetLen: subnetLen,
    Backend: n.mode === "ipip" ? { Type: "ipip" } : { Type: "vxlan", VNI: n.vni, Port: n.port },
  };
  if (n.mode === "vxlan-l2") c.VxtunMode = "vxlan-l2";
  return c;
}

/**
 * Why the stored network config cannot serve this node, or undefined if it can. Absent
 * fields take flannel's defaults (SubnetLen 24, VNI 1, Port 8472 — the kernel's port).
 */
export function configMismatch(
  stored: NetworkConfig,
  network: string,
  subnetLen: number,
  n: Pick<NodeIdentity, "mode" | "vni" | "port">,
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
  return diffs.length ? diffs.join(", ") : undefined;
}

/** A peer spec from another node's lease, or why it cannot be one in our mode. */
export function peerFromLease(
  subnet: string,
  v: LeaseValue,
  mode: Mode,
): { address: string; subnet: string; vtepMac?: string } | string {
  if (v.BackendType !== backendType(mode))
    return `backend ${v.BackendType}, ours ${backendType(mode)}`;
  const l2 = v.VxtunMode === "vxlan-l2";
  if (l2 !== (mode === "vxlan-l2")) return `mode ${l2 ? "vxlan-l2" : "L3"} differs from ours`;
  if (mode === "vxlan") {
    const mac = v.BackendData?.VtepMAC;
    if (!mac || parseMac(mac) === undefined) return "no valid BackendData.VtepMAC";
    return { address: v.PublicIP, subnet, vtepMac: mac.toLowerCase() };
  }
  return { address: v.PublicIP, subnet };
}
