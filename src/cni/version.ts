// Spec versions we speak and the conversions between result formats. Results are built
// in the 1.x shape and encoded for the version the configuration asks for.
import { CniCode, CniError } from "./errors.js";

export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export const LATEST = "1.1.0";

/** Compare two dotted versions numerically (-1, 0, 1). */
export function cmpVersion(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export function checkSupported(version: string): void {
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(
      CniCode.incompatibleVersion,
      "incompatible CNI versions",
      `config is "${version}", plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    );
  }
}

/** Commands that newer specs introduced refuse older configurations, as the reference skel does. */
export function requireAtLeast(version: string, min: string, command: string): void {
  if (cmpVersion(version, min) < 0) {
    throw new CniError(
      CniCode.incompatibleVersion,
      `config version does not allow ${command}`,
      `${command} needs cniVersion ${min} or later; config is "${version}"`,
    );
  }
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIp {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A result in the 1.x shape (no per-IP "version"). */
export interface CniResult {
  interfaces: CniInterface[];
  ips: CniIp[];
  routes: CniRoute[];
  dns: CniDns;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Read a result of any supported version (an IPAM answer or a prevResult) into the 1.x
 * shape. 0.3.x/0.4.0 carry "version" per IP; 1.x drops it; the rest is the same.
 */
export function parseResult(raw: unknown, what: string): CniResult {
  if (!isObj(raw)) throw new CniError(CniCode.decode, `${what} is not a JSON object`);
  const arr = (k: string): unknown[] => {
    const v = raw[k];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new CniError(CniCode.decode, `${what}: "${k}" is not a list`);
    return v;
  };
  /** List `k`'s entries: each an object with the string `key`, plus the optional fields
   * of the given types (an empty string counts as absent). */
  const entries = <T>(k: string, key: string, optional: Record<string, "string" | "number">) =>
    arr(k).map((v, i) => {
      if (!isObj(v) || typeof v[key] !== "string") {
        throw new CniError(CniCode.decode, `${what}: ${k}[${i}] has no ${key}`);
      }
      const out: Record<string, unknown> = { [key]: v[key] };
      for (const [f, type] of Object.entries(optional)) {
        if (typeof v[f] === type && v[f] !== "") out[f] = v[f];
      }
      return out as T;
    });
  const interfaces = entries<CniInterface>("interfaces", "name", {
    mac: "string",
    mtu: "number",
    sandbox: "string",
  });
  const ips = entries<CniIp>("ips", "address", { gateway: "string", interface: "number" });
  const routes = entries<CniRoute>("routes", "dst", { gw: "string" });
  const dns = isObj(raw.dns) ? (raw.dns as CniDns) : {};
  return { interfaces, ips, routes, dns };
}

/** Encode a result for `version`: per-IP "version" before 1.0.0, interface MTU from 1.1.0. */
export function encodeResult(r: CniResult, version: string): Record<string, unknown> {
  const legacy = cmpVersion(version, "1.0.0") < 0;
  const withMtu = cmpVersion(version, "1.1.0") >= 0;
  const out: Record<string, unknown> = {
    cniVersion: version,
    interfaces: r.interfaces.map((i) => {
      const o: Record<string, unknown> = { name: i.name };
      if (i.mac) o.mac = i.mac;
      if (withMtu && i.mtu) o.mtu = i.mtu;
      if (i.sandbox) o.sandbox = i.sandbox;
      return o;
    }),
    ips: r.ips.map((ip) => {
      const o: Record<string, unknown> = {};
      if (legacy) o.version = ip.address.includes(":") ? "6" : "4";
      o.address = ip.address;
      if (ip.gateway) o.gateway = ip.gateway;
      if (ip.interface !== undefined) o.interface = ip.interface;
      return o;
    }),
  };
  if (r.routes.length) out.routes = r.routes;
  out.dns = r.dns;
  return out;
}
