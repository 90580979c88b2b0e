// Validation of control input into the numeric representations of src/encap/addr.ts.
// Every failure is a TableError whose message names the bad value and the fix.

import { formatIpv4, parseIpv4, parseMac, prefixMask } from "../encap/addr.js";
import { equalIpv6, formatIpv6, IPV6_LEN, maskIpv6, parseIpv6 } from "../encap/addr6.js";
import { TableError } from "./errors.js";

/** A MAC as a 48-bit integer or as "aa:bb:cc:dd:ee:ff". */
export type MacInput = number | string;
/** An IPv4 address as a uint32 (host order) or as dotted quad. */
export type Ipv4Input = number | string;

export function toMac(value: MacInput, what = "MAC address"): number {
  if (typeof value === "string") {
    const how = "write six colon-separated hex pairs, e.g. aa:bb:cc:dd:ee:ff";
    return parsed(parseMac(value.trim()), value, what, how);
  }
  return toUint(value, 0, 0xffffffffffff, what, "0..2^48-1");
}

export function toIpv4(value: Ipv4Input, what = "IPv4 address"): number {
  if (typeof value === "string") {
    const how = "write a dotted quad without leading zeros, e.g. 198.18.0.2";
    return parsed(parseIpv4(value.trim()), value, what, how);
  }
  // Accept the signed int32 form too (ip | 0): some callers keep addresses that way.
  return toUint(value, -0x80000000, 0xffffffff, what, "0..2^32-1") >>> 0;
}

/**
 * An integer option in [min, max]; `what` names it in the message, `range` (if the
 * bounds read better another way) describes them.
 */
export function toUint(
  value: number,
  min: number,
  max: number,
  what: string,
  range = `${min}..${max}`,
): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TableError("EINVAL", `bad ${what} ${value}: expected an integer in ${range}`);
  }
  return value;
}

/** An IPv6 address as 16 bytes in network order or as text. */
export type Ipv6Input = Uint8Array | string;

export function toIpv6(value: Ipv6Input, what = "IPv6 address"): Uint8Array {
  if (typeof value === "string") {
    const how = "write an IPv6 address such as 2001:db8::1 (no zone)";
    return parsed(parseIpv6(value.trim()), value, what, how);
  }
  if (value.length !== IPV6_LEN) {
    throw new TableError("EINVAL", `bad ${what}: expected 16 bytes, got ${value.length}`);
  }
  return Uint8Array.from(value);
}

/** `value` parsed from `text`, or the error that says how to write it. */
function parsed<T>(value: T | undefined, text: string, what: string, how: string): T {
  if (value === undefined) throw new TableError("EINVAL", `bad ${what} "${text}": ${how}`);
  return value;
}

/** Network address and length, refusing host bits (like `ip route add 10.0.0.1/24`). */
export function toPrefix(addr: Ipv4Input, len: number): { addr: number; len: number } {
  const ip = toIpv4(addr, "prefix address");
  toUint(len, 0, 32, "prefix length");
  const net = (ip & prefixMask(len)) >>> 0;
  if (net !== ip) {
    throw new TableError(
      "EINVAL",
      `prefix ${formatIpv4(ip)}/${len} has host bits set: use ${formatIpv4(net)}/${len}`,
    );
  }
  return { addr: net, len };
}

/** Parse "a.b.c.d/len", "a.b.c.d" (a /32) or "default" (0.0.0.0/0). */
export function parsePrefix(text: string): { addr: number; len: number } {
  const t = text.trim();
  if (t === "default") return { addr: 0, len: 0 };
  const slash = t.indexOf("/");
  if (slash < 0) return toPrefix(t, 32);
  const lenText = t.slice(slash + 1);
  if (!/^\d{1,2}$/.test(lenText)) {
    throw new TableError("EINVAL", `bad prefix "${text}": write a.b.c.d/len with len in 0..32`);
  }
  return toPrefix(t.slice(0, slash), Number(lenText));
}

/** IPv6 network address and length, refusing host bits (like `ip -6 route add`). */
export function toPrefix6(addr: Ipv6Input, len: number): { addr: Uint8Array; len: number } {
  const ip = toIpv6(addr, "prefix address");
  toUint(len, 0, 128, "prefix length");
  const net = maskIpv6(ip, len);
  if (!equalIpv6(net, 0, ip, 0)) {
    throw new TableError(
      "EINVAL",
      `prefix ${formatIpv6(ip)}/${len} has host bits set: use ${formatIpv6(net)}/${len}`,
    );
  }
  return { addr: net, len };
}

/** Parse "addr/len", a bare address (a /128) or "default" (::/0). */
export function parsePrefix6(text: string): { addr: Uint8Array; len: number } {
  const t = text.trim();
  if (t === "default") return { addr: new Uint8Array(IPV6_LEN), len: 0 };
  const slash = t.indexOf("/");
  if (slash < 0) return toPrefix6(t, 128);
  const lenText = t.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) {
    throw new TableError("EINVAL", `bad prefix "${text}": write addr/len with len in 0..128`);
  }
  return toPrefix6(t.slice(0, slash), Number(lenText));
}
