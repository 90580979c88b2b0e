// IPv6 prefixes for the control plane (pod subnets, not packets): flannel's IP6Net
// arithmetic with BigInt, so a /48 split into /64s costs nothing to enumerate lazily.
import { formatIpv6, parseCidr6 } from "../encap/addr6.js";

export interface Net6 {
  /** The 128-bit address as an integer. */
  addr: bigint;
  len: number;
}

function toBig(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function toBytes(v: bigint): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** RFC 5952 text of an address (as Go's net.IP.String writes it). */
export function formatAddr6(addr: bigint): string {
  return formatIpv6(toBytes(addr));
}

/** "fd00::/48" → its network and length (host bits must be clear); undefined if not. */
export function parseNet6(text: string): Net6 | undefined {
  const c = parseCidr6(text);
  if (!c) return undefined;
  const addr = toBig(c.addr);
  return addr & hostMask(c.len) ? undefined : { addr, len: c.len };
}

function hostMask(len: number): bigint {
  return (1n << BigInt(128 - len)) - 1n;
}

export function formatNet6(n: Net6): string {
  return `${formatAddr6(n.addr)}/${n.len}`;
}

/** The canonical text of a prefix ("fd00:0::/48" → "fd00::/48"), or undefined. */
export function canonicalNet6(text: string): string | undefined {
  const n = parseNet6(text);
  return n && formatNet6(n);
}

/**
 * The /subnetLen blocks of `network` from the second one on (flannel skips the first:
 * its network address would collide with the network's), lowest first.
 */
export function* subnets6(network: Net6, subnetLen: number): Generator<string> {
  const step = 1n << BigInt(128 - subnetLen);
  const count = 1n << BigInt(subnetLen - network.len);
  for (let i = 1n; i < count; i++)
    yield formatNet6({ addr: network.addr + i * step, len: subnetLen });
}

/** Is `subnet` a canonical /subnetLen inside `network`, and not its first block? */
export function subnet6Fits(subnet: string, network: Net6, subnetLen: number): boolean {
  const s = parseNet6(subnet);
  if (!s || s.len !== subnetLen || formatNet6(s) !== subnet) return false;
  const inside = (s.addr & ~hostMask(network.len)) === network.addr;
  return inside && s.addr !== network.addr;
}

/** The first address of a subnet (its gateway, as flannel's FLANNEL_IPV6_SUBNET). */
export function firstHost6(subnet: string): string {
  return formatAddr6(parseNet6(subnet)!.addr + 1n);
}
